/**
 * The typed client of protocol v1, for browsers and Node (inject `nodeSockets()` from
 * client/node.ts there): one connection, any number of sessions and generations at once.
 */
export {
  ChatClient,
  type CloseInfo,
  type ConnectOptions,
  type SessionInfo,
  type SocketFactory,
  type ToolResultInput,
  type WebSocketLike,
} from './ChatClient.js';
export { ClientError } from './ClientError.js';
export { ClientGeneration, type TokenChunk } from './ClientGeneration.js';
export { type ConnectionState, ReconnectingClient, type ReconnectOptions } from './ReconnectingClient.js';
