import type { Refusal } from '../../protocol/index.js';
import { type HttpResponse, PayloadTooLargeError, RequestTimeoutError } from '../transport/Transport.js';

/** The request body as JSON, or the refusal for one too large, too slow or not JSON. */
export async function readJsonBody(response: HttpResponse, maxBytes: number): Promise<{ value: unknown } | Refusal> {
  try {
    const body = await response.readBody(maxBytes);
    return { value: JSON.parse(body.toString('utf8')) };
  } catch (error) {
    if (error instanceof PayloadTooLargeError) return { code: 'payload_too_large', message: error.message };
    if (error instanceof RequestTimeoutError) return { code: 'request_timeout', message: error.message };
    return { code: 'bad_json', message: 'The request body is not valid JSON' };
  }
}
