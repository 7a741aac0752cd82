import WebSocket from 'ws';
import type { SocketFactory, WebSocketLike } from './ChatClient.js';

/**
 * Sockets for Node, from the `ws` package: with headers, which browsers cannot send, so that a bot
 * authenticates with `Authorization: Bearer <key>`.
 */
export function nodeSockets({
  apiKey,
  headers = {},
}: {
  apiKey?: string;
  headers?: Record<string, string>;
} = {}): SocketFactory {
  const all = apiKey === undefined ? headers : { ...headers, authorization: `Bearer ${apiKey}` };
  return (url, protocols) => new WebSocket(url, protocols, { headers: all }) as unknown as WebSocketLike;
}
