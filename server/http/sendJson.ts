import { errorBody, HTTP_STATUS, openAiErrorBody, type Refusal } from '../../protocol/index.js';
import type { HttpResponse } from '../transport/Transport.js';

export function sendJson(
  response: HttpResponse,
  body: unknown,
  { status = 200, headers = {} }: { status?: number; headers?: Readonly<Record<string, string>> } = {},
): void {
  response.writeHead(status, { 'content-type': 'application/json', ...headers });
  response.end(JSON.stringify(body));
}

/**
 * A refusal as an HTTP error: the status from protocol's one table, the body plain or in OpenAI's
 * shape (the /v1 API), and Retry-After when the refusal says when to retry.
 */
export function sendRefusal(
  response: HttpResponse,
  refusal: Refusal,
  { shape = 'plain', headers = {} }: { shape?: 'plain' | 'openai'; headers?: Readonly<Record<string, string>> } = {},
): void {
  const { retryAfterMs } = refusal;
  const retry: Record<string, string> =
    retryAfterMs === undefined ? {} : { 'retry-after': String(Math.max(1, Math.ceil(retryAfterMs / 1000))) };
  const body = shape === 'openai' ? openAiErrorBody(refusal) : errorBody(refusal);
  sendJson(response, body, { status: HTTP_STATUS[refusal.code], headers: { ...retry, ...headers } });
}
