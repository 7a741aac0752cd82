import { type Logger, pino } from 'pino';

export type { Logger };

/**
 * JSON logs on stdout, pretty when stdout is a terminal. Never log keys, tickets or message
 * text at info level.
 */
export function createLogger(level: string): Logger {
  const base = { service: 'llm-chat-server' };
  if (process.stdout.isTTY) return pino({ level, base, transport: { target: 'pino-pretty' } });
  return pino({ level, base });
}
