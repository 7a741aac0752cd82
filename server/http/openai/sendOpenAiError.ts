import type { ErrorCode } from '../../../protocol/index.js';
import type { HttpResponse } from '../../transport/Transport.js';
import { sendJson } from '../sendJson.js';

const TYPES: Readonly<Record<number, string>> = {
  400: 'invalid_request_error',
  401: 'authentication_error',
  404: 'not_found_error',
  408: 'invalid_request_error',
  413: 'invalid_request_error',
  429: 'rate_limit_error',
  503: 'service_unavailable',
};

/** An error in OpenAI's shape, `code` from our closed set; 429s carry Retry-After. */
export function sendOpenAiError(
  response: HttpResponse,
  status: number,
  code: ErrorCode,
  message: string,
  retryAfterMs?: number,
): void {
  const headers: Record<string, string> = {};
  if (retryAfterMs !== undefined) headers['retry-after'] = String(Math.max(1, Math.ceil(retryAfterMs / 1000)));
  const type = TYPES[status] ?? 'server_error';
  sendJson(
    response,
    status,
    { error: { message, type, param: null, code, ...(retryAfterMs === undefined ? {} : { retryAfterMs }) } },
    headers,
  );
}
