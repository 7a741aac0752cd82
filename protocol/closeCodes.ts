/**
 * WebSocket close codes the server uses. 1000–1011 are the standard ones; application codes
 * are 4000 + the HTTP status they resemble.
 */
export const CloseCodes = {
  Normal: { code: 1000, reason: 'Normal closure' },
  ShuttingDown: { code: 1001, reason: 'Server shutting down' },
  PolicyViolation: { code: 1008, reason: 'Too many bad frames' },
  MessageTooBig: { code: 1009, reason: 'Frame too large' },
  InternalError: { code: 1011, reason: 'Internal error' },
  UnsupportedVersion: { code: 4400, reason: 'Unsupported protocol version' },
  Unauthorized: { code: 4401, reason: 'Unauthorized' },
  Forbidden: { code: 4403, reason: 'Forbidden' },
  IdleTimeout: { code: 4408, reason: 'Idle timeout' },
  SlowConsumer: { code: 4429, reason: 'Client too slow to read' },
} as const satisfies Record<string, { code: number; reason: string }>;

export type CloseCode = (typeof CloseCodes)[keyof typeof CloseCodes];
