import { createChatServer } from './ChatServer.js';
import { ConfigError, loadConfig } from './config.js';
import { ModelStartError } from './engine/modelErrors.js';
import { createLogger } from './log.js';

/** The CLI over createChatServer: settings from flags and variables, signals, exit codes. */
async function main(): Promise<void> {
  const config = loadConfig(process.argv.slice(2), process.env);
  const logger = createLogger(config.logLevel);
  process.on('unhandledRejection', (reason) => logger.error({ err: reason }, 'unhandled rejection'));
  const server = createChatServer({ config, logger });
  await server.listen();

  let signals = 0;
  const onSignal = (signal: NodeJS.Signals) => {
    signals += 1;
    if (signals > 1) process.exit(1);
    logger.info({ signal, graceMs: config.shutdownGraceMs }, 'stopping');
    server.close().then(
      () => process.exit(0),
      (error: unknown) => {
        logger.error({ err: error }, 'error while stopping');
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);

  server.ready.catch((error: unknown) => {
    const message = error instanceof ModelStartError ? error.message : `Cannot load the model: ${String(error)}`;
    logger.fatal({ err: error }, 'model load failed');
    process.stderr.write(`\n${message}\n\n`);
    process.exit(1);
  });
}

// Invalid settings exit 2; anything else that stops the start (a busy port) exits 1.
main().catch((error: unknown) => {
  process.stderr.write(`${error instanceof Error ? error.message : String(error)}\n`);
  process.exit(error instanceof ConfigError ? 2 : 1);
});
