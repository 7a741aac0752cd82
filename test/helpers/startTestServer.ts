import { pino } from 'pino';
import { createChatServer } from '../../server/ChatServer.js';
import type { ConfigInput } from '../../server/config.js';
import type { Engine } from '../../server/engine/Engine.js';
import { MODEL_PATH } from '../../tooling/testModel.js';

/**
 * Starts the real server on an ephemeral port, with the tiny real model or an engine double.
 * With `logLines`, info logs are collected there instead of being silenced.
 */
export async function startTestServer(
  overrides: ConfigInput = {},
  {
    waitReady = true,
    logLines = undefined as string[] | undefined,
    /** An engine double for fast tests of the server's logic; the real tiny model otherwise. */
    engine = undefined as Engine | undefined,
  } = {},
) {
  const logger = logLines
    ? pino({ level: 'info' }, { write: (line: string) => logLines.push(line) })
    : pino({ level: 'silent' });
  // Tests keep conversations in memory unless they test a store.
  const config = { modelPath: MODEL_PATH, port: 0, store: 'memory', ...overrides };
  const server = createChatServer(engine === undefined ? { config, logger } : { config, logger, engine });
  const { port } = await server.listen();
  if (waitReady) await server.ready;
  return {
    server,
    config: server.config,
    port,
    wsUrl: `ws://127.0.0.1:${port}/v1/ws`,
    httpUrl: `http://127.0.0.1:${port}`,
    stop: () => server.close(),
  };
}
