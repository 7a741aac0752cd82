import { startServer } from '../../server/ChatServer.js';
import { type ConfigInput, ConfigSchema } from '../../server/config.js';
import { createLogger } from '../../server/log.js';

export const MODEL_PATH = process.env.MODEL_PATH ?? '../shared/models/stories260K.gguf';

/** Starts the real server on an ephemeral port with the tiny real model. */
export async function startTestServer(overrides: ConfigInput = {}, { waitReady = true } = {}) {
  const config = ConfigSchema.parse({ modelPath: MODEL_PATH, port: 0, logLevel: 'silent', ...overrides });
  const server = await startServer(config, createLogger(config.logLevel));
  if (waitReady) await server.ready;
  return {
    server,
    config,
    wsUrl: `ws://127.0.0.1:${server.port}/v1/ws`,
    httpUrl: `http://127.0.0.1:${server.port}`,
    stop: () => server.stop(),
  };
}
