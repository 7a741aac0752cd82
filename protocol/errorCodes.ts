/**
 * The closed set of error codes an `error` frame (or an HTTP error body) may carry.
 * A client switches on these; the message is for humans.
 */
export const ERROR_CODES = [
  'bad_json',
  'bad_frame',
  'unsupported_parameter',
  'unknown_type',
  'unsupported_version',
  'unauthorized',
  'forbidden',
  'not_found',
  'method_not_allowed',
  'session_busy',
  'queue_full',
  'rate_limited',
  'payload_too_large',
  'request_timeout',
  'context_overflow',
  'session_full',
  'model_error',
  'shutting_down',
  'not_ready',
  'store_unavailable',
  'upstream_error',
  'internal',
] as const;

export type ErrorCode = (typeof ERROR_CODES)[number];

/** Whether the same request may succeed if sent again later, per code. */
export const RETRYABLE: Readonly<Record<ErrorCode, boolean>> = {
  bad_json: false,
  bad_frame: false,
  unsupported_parameter: false,
  unknown_type: false,
  unsupported_version: false,
  unauthorized: false,
  forbidden: false,
  not_found: false,
  method_not_allowed: false,
  session_busy: true,
  queue_full: true,
  rate_limited: true,
  payload_too_large: false,
  request_timeout: true,
  context_overflow: false,
  session_full: false,
  model_error: false,
  shutting_down: true,
  not_ready: true,
  store_unavailable: true,
  upstream_error: true,
  internal: true,
};
