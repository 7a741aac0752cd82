import { startServer } from './ChatServer.js';
import { ConfigError, loadConfig } from './config.js';
import { ModelNotFoundError } from './engine/locateModel.js';
import { createLogger } from './log.js';

async function main(): Promise<void> {
  let config: ReturnType<typeof loadConfig>;
  try {
    config = loadConfig(process.argv.slice(2), process.env);
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    process.stderr.write(`${error.message}\n`);
    process.exit(2);
  }
  const log = createLogger(config.logLevel);
  process.on('unhandledRejection', (reason) => log.error({ err: reason }, 'unhandled rejection'));
  const server = await startServer(config, log);

  let signals = 0;
  const onSignal = (signal: NodeJS.Signals) => {
    signals += 1;
    if (signals > 1) process.exit(1);
    log.info({ signal, graceMs: config.shutdownGraceMs }, 'stopping');
    server.stop().then(
      () => process.exit(0),
      (error: unknown) => {
        log.error({ err: error }, 'error while stopping');
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);

  server.ready.catch((error: unknown) => {
    const message = error instanceof ModelNotFoundError ? error.message : `Cannot load the model: ${String(error)}`;
    log.fatal({ err: error }, 'model load failed');
    process.stderr.write(`\n${message}\n\n`);
    process.exit(1);
  });
}

main().catch((error: unknown) => {
  process.stderr.write(`${error instanceof Error ? error.message : String(error)}\n`);
  process.exit(error instanceof ConfigError ? 2 : 1);
});
