import { nanoid } from 'nanoid';
import type { ErrorCode } from '../../protocol/index.js';
import type { UpgradeRequest } from '../transport/Transport.js';
import { type ApiKeys, bearerToken } from './ApiKeys.js';
import type { Identity } from './Identity.js';
import { isLoopbackRequest } from './loopbackOnly.js';
import { TICKET_PREFIX, type TicketStore } from './TicketStore.js';

export type AuthResult =
  | { ok: true; identity: Identity }
  | { ok: false; status: number; code: ErrorCode; message: string };

const OPEN_OWNER = 'open';

/**
 * Decides who is connecting: a bot by `Authorization: Bearer <key>`, a browser by a
 * `ticket.<ticket>` subprotocol entry, anyone when no keys are configured. Browser origins must
 * be the server's own or on the allowlist.
 */
export function authenticateUpgrade(
  request: UpgradeRequest,
  keys: ApiKeys,
  tickets: TicketStore,
  allowedOrigins: readonly string[],
): AuthResult {
  const origin = request.headers.origin;
  if (origin !== undefined && !originAllowed(origin, request.headers.host, allowedOrigins)) {
    return { ok: false, status: 403, code: 'forbidden', message: `Origin ${origin.slice(0, 200)} is not allowed` };
  }
  if (!keys.enabled) {
    if (!isLoopbackRequest(request.headers)) {
      return { ok: false, status: 403, code: 'forbidden', message: 'Without API keys only loopback hosts may connect' };
    }
    const connectionKey = `conn:${nanoid(12)}`;
    return { ok: true, identity: { keyName: undefined, ownerKey: OPEN_OWNER, clientKey: connectionKey } };
  }
  const keyName = keyNameOf(request, keys, tickets);
  if (keyName === undefined) {
    const message = 'Send Authorization: Bearer <API key>, or a ticket from POST /v1/tickets as a subprotocol';
    return { ok: false, status: 401, code: 'unauthorized', message };
  }
  return { ok: true, identity: { keyName, ownerKey: `key:${keyName}`, clientKey: `key:${keyName}` } };
}

function keyNameOf(request: UpgradeRequest, keys: ApiKeys, tickets: TicketStore): string | undefined {
  const bearer = bearerToken(request.headers.authorization);
  if (bearer !== undefined) return keys.verify(bearer);
  const ticket = request.offeredProtocols.find((entry) => entry.startsWith(TICKET_PREFIX));
  return ticket === undefined ? undefined : tickets.redeem(ticket.slice(TICKET_PREFIX.length));
}

/** Same origin as the server (the web demo), or listed. */
function originAllowed(origin: string, host: string | undefined, allowed: readonly string[]): boolean {
  if (allowed.includes('*') || allowed.includes(origin)) return true;
  try {
    return new URL(origin).host === host;
  } catch {
    return false;
  }
}
