import type { ErrorFrame } from '../../protocol/serverFrames.js';

/** An error frame in plain words for a person. */
export function describeError(error: Pick<ErrorFrame, 'code' | 'message' | 'retryAfterMs'>): string {
  const seconds = error.retryAfterMs === undefined ? undefined : Math.max(1, Math.ceil(error.retryAfterMs / 1000));
  const retry = seconds === undefined ? '' : ` Try again in ${seconds} s.`;
  switch (error.code) {
    case 'rate_limited':
      return `Rate limited: you are sending too much.${retry}`;
    case 'queue_full':
      return `The server is busy right now.${retry}`;
    case 'session_busy':
      return 'Still answering the last message: wait for it or press Stop.';
    case 'payload_too_large':
      return 'That message is too long.';
    case 'shutting_down':
    case 'not_ready':
      return `The server is restarting.${retry}`;
    case 'context_overflow':
      return 'That message does not fit in the model’s memory; try a shorter one.';
    default:
      return `Something went wrong (${error.code}): ${error.message}`;
  }
}
