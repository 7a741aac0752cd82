import { type Logger, pino } from 'pino';

export type { Logger };

/** JSON logs on stdout; never log keys, tickets or message text at info level. */
export function createLogger(level: string): Logger {
  return pino({ level, base: { service: 'llm-chat-server' } });
}
