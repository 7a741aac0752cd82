/**
 * The server as a library: `import { createChatServer } from 'llm-chat-server'`. server/main.ts is
 * the CLI over the same function.
 */
export {
  type ChatServer,
  type ChatServerOptions,
  createChatServer,
  type ServerAddress,
  type TransportFactory,
} from './ChatServer.js';
export { type Config, ConfigError, type ConfigInput, ConfigSchema, loadConfig, parseConfig } from './config.js';
export type {
  ChatMessage,
  Engine,
  EngineChunk,
  EngineInfo,
  EngineRequest,
  EngineResult,
  SamplingParams,
} from './engine/Engine.js';
export { createLogger, type Logger } from './log.js';
