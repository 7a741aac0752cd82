import { pino } from 'pino';
import { startServer } from '../../server/ChatServer.js';
import { type ConfigInput, ConfigSchema, EMBEDDED_MODEL_PATH } from '../../server/config.js';
import { createLogger } from '../../server/log.js';

/** The model every test runs on: MODEL_PATH when set, else the tiny model committed in models/. */
export const MODEL_PATH = process.env.MODEL_PATH || EMBEDDED_MODEL_PATH;

/**
 * Starts the real server on an ephemeral port with the tiny real model. With `logLines`, info
 * logs are collected there instead of being silenced.
 */
export async function startTestServer(
  overrides: ConfigInput = {},
  { waitReady = true, logLines = undefined as string[] | undefined } = {},
) {
  const config = ConfigSchema.parse({
    modelPath: MODEL_PATH,
    port: 0,
    logLevel: logLines ? 'info' : 'silent',
    ...overrides,
  });
  const log = logLines
    ? pino({ level: 'info' }, { write: (line: string) => logLines.push(line) })
    : createLogger(config.logLevel);
  const server = await startServer(config, log);
  if (waitReady) await server.ready;
  return {
    server,
    config,
    wsUrl: `ws://127.0.0.1:${server.port}/v1/ws`,
    httpUrl: `http://127.0.0.1:${server.port}`,
    stop: () => server.stop(),
  };
}
