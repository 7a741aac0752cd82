import type { ErrorCode } from '../protocol/errorCodes.js';
import type { ErrorFrame } from '../protocol/serverFrames.js';

/** A request the server refused (its `error` frame), or a connection that is gone. */
export class ClientError extends Error {
  override name = 'ClientError';

  constructor(
    readonly code: ErrorCode | 'connection_closed',
    message: string,
    readonly retryable = false,
    readonly retryAfterMs?: number,
  ) {
    super(message);
  }

  static of(frame: ErrorFrame): ClientError {
    return new ClientError(frame.code, frame.message, frame.retryable, frame.retryAfterMs);
  }
}
