import type { Refusal } from '../../protocol/index.js';
import type { StoreUnavailable } from './Store.js';

/** How long a client should wait before trying again while the store is away. */
const RETRY_STORE_MS = 1000;

/** The refusal a request gets while the store cannot be reached: retryable, with the reason. */
export function storeRefusal(error: StoreUnavailable): Refusal {
  return {
    code: 'store_unavailable',
    message: `The conversation store is unavailable (${error.message}); retry shortly`,
    retryAfterMs: RETRY_STORE_MS,
  };
}
