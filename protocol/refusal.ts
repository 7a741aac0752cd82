import { type ErrorCode, RETRYABLE } from './errorCodes.js';

/**
 * A request refused, whatever refused it (decoding, authentication, a limit, admission, the
 * scheduler): what the client is told in an `error` frame or an HTTP error body.
 */
export type Refusal = {
  code: ErrorCode;
  message: string;
  retryAfterMs?: number;
  /** The request field at fault, where one is (OpenAI's error `param`). */
  param?: string;
};

/** The one table from error code to HTTP status: no status is written by hand elsewhere. */
export const HTTP_STATUS: Readonly<Record<ErrorCode, number>> = {
  bad_json: 400,
  bad_frame: 400,
  unsupported_parameter: 400,
  unknown_type: 400,
  unsupported_version: 426,
  unauthorized: 401,
  forbidden: 403,
  not_found: 404,
  method_not_allowed: 405,
  session_busy: 409,
  queue_full: 429,
  rate_limited: 429,
  payload_too_large: 413,
  request_timeout: 408,
  context_overflow: 400,
  session_full: 409,
  model_error: 500,
  shutting_down: 503,
  not_ready: 503,
  store_unavailable: 503,
  upstream_error: 502,
  internal: 500,
};

/** The plain JSON error body (WebSocket upgrades, health, tickets, static files). */
export function errorBody(refusal: Refusal) {
  const { code, message, retryAfterMs } = refusal;
  return {
    error: { code, message, retryable: RETRYABLE[code], ...(retryAfterMs === undefined ? {} : { retryAfterMs }) },
  };
}

/** OpenAI's error `type` for each status class, as its clients expect. */
const OPENAI_TYPES: Readonly<Record<number, string>> = {
  400: 'invalid_request_error',
  401: 'authentication_error',
  403: 'permission_error',
  404: 'not_found_error',
  405: 'invalid_request_error',
  408: 'invalid_request_error',
  409: 'invalid_request_error',
  413: 'invalid_request_error',
  429: 'rate_limit_error',
  503: 'service_unavailable',
};

/** The OpenAI-shaped error body (the /v1 API), with our code. */
export function openAiErrorBody(refusal: Refusal) {
  const { code, message, retryAfterMs, param = null } = refusal;
  const type = OPENAI_TYPES[HTTP_STATUS[code]] ?? 'server_error';
  return { error: { message, type, param, code, ...(retryAfterMs === undefined ? {} : { retryAfterMs }) } };
}
