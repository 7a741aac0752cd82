/** The protocol version this package describes; also the WebSocket subprotocol a client offers. */
export const PROTOCOL_VERSION = 'llm-chat.v1';

/** Every subprotocol this server speaks, newest first. */
export const SUPPORTED_SUBPROTOCOLS: readonly string[] = [PROTOCOL_VERSION];

/** The WebSocket endpoint of protocol v1. */
export const WS_PATH = '/v1/ws';
