import { PROTOCOL_VERSION, type Refusal } from '../../protocol/index.js';
import type { Identity } from '../auth/Identity.js';

/**
 * Any page may read the probe's answer: a browser cannot see why its WebSocket upgrade was
 * refused (only that it closed), so the widget asks here and shows the reason in words.
 */
export const UPGRADE_PROBE_HEADERS: Readonly<Record<string, string>> = {
  'access-control-allow-origin': '*',
  'cache-control': 'no-store',
  upgrade: 'websocket',
};

/**
 * GET /v1/ws without an upgrade: the refusal an upgrade from the same page would get, as far as a
 * plain request can tell, in the upgrade's order: not ready or stopping (503), an origin not
 * allowed (403), a key or ticket needed (401); otherwise 426, naming the subprotocol to offer.
 */
export function upgradeProbe(state: string, identity: Identity | Refusal): Refusal {
  if (state === 'shutting_down') return { code: 'shutting_down', message: 'The server is shutting down' };
  if (state !== 'ready') return { code: 'not_ready', message: 'The model is still loading', retryAfterMs: 1000 };
  if ('code' in identity) return identity;
  return { code: 'unsupported_version', message: `Open a WebSocket here with the subprotocol "${PROTOCOL_VERSION}"` };
}
