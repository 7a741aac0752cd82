/** A refusal (an error frame, or the client's) in plain words for a person. */
export function describeError(error: { code: string; message: string; retryAfterMs?: number | undefined }): string {
  const seconds = error.retryAfterMs === undefined ? undefined : Math.max(1, Math.ceil(error.retryAfterMs / 1000));
  const retry = seconds === undefined ? '' : ` Try again in ${seconds} s.`;
  switch (error.code) {
    case 'rate_limited':
      return `Rate limited: you are sending too much.${retry}`;
    case 'queue_full':
      return `The server is busy right now.${retry}`;
    case 'session_busy':
      return 'This conversation is still being answered (perhaps in another tab): wait for the answer to end.';
    case 'payload_too_large':
      return 'That message is too long.';
    case 'session_full':
      return 'This conversation is full: start a new chat.';
    case 'shutting_down':
    case 'not_ready':
      return `The server is restarting.${retry}`;
    case 'connection_closed':
      return 'The answer was interrupted: the connection was lost.';
    case 'not_found':
      return 'The answer was interrupted: this conversation is no longer on the server.';
    case 'context_overflow':
      return 'That message does not fit in the model’s memory; try a shorter one.';
    default:
      return `Something went wrong (${error.code}): ${error.message}`;
  }
}
