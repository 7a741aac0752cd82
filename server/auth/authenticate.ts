import type { Refusal } from '../../protocol/index.js';
import { type ApiKeys, bearerToken } from './ApiKeys.js';
import type { Identity } from './Identity.js';
import { isLoopbackRequest } from './loopbackOnly.js';
import { TICKET_PREFIX, type TicketStore } from './TicketStore.js';

/** What decides who may come in: the keys, the browser tickets, the allowed origins. */
export type Access = { keys: ApiKeys; tickets: TicketStore; allowedOrigins: readonly string[] };

export type AuthRequest = {
  headers: Readonly<Record<string, string>>;
  /** WebSocket subprotocols offered (a browser's ticket comes as one); none over plain HTTP. */
  offeredProtocols?: readonly string[];
};

const OPEN_OWNER = 'open';

/**
 * Decides who is calling, for a WebSocket upgrade and an HTTP request alike: a bot by
 * `Authorization: Bearer <key>`, a browser by a `ticket.<ticket>` subprotocol entry, anyone on a
 * loopback host when no keys are configured. Browser origins must be the server's own or on the
 * allowlist. `openClientKey` is the unit of limits in open mode (a connection, or HTTP as a whole).
 */
export async function authenticate(
  request: AuthRequest,
  access: Access,
  openClientKey: string,
): Promise<Identity | Refusal> {
  const { origin, host } = request.headers;
  if (origin !== undefined && !originAllowed(origin, host, access.allowedOrigins)) {
    return { code: 'forbidden', message: `Origin ${origin.slice(0, 200)} is not allowed` };
  }
  if (!access.keys.enabled) {
    if (!isLoopbackRequest(request.headers)) {
      return { code: 'forbidden', message: 'Without API keys this server only answers requests to a loopback host' };
    }
    return { keyName: undefined, ownerKey: OPEN_OWNER, clientKey: openClientKey };
  }
  const keyName = await keyNameOf(request, access);
  if (keyName === undefined) {
    const ticketHint =
      request.offeredProtocols === undefined ? '' : ', or a ticket from POST /v1/tickets as a subprotocol';
    return { code: 'unauthorized', message: `Send Authorization: Bearer <API key>${ticketHint}` };
  }
  return { keyName, ownerKey: `key:${keyName}`, clientKey: `key:${keyName}` };
}

export function isRefusal(result: Identity | Refusal): result is Refusal {
  return 'code' in result;
}

async function keyNameOf(request: AuthRequest, { keys, tickets }: Access): Promise<string | undefined> {
  const bearer = bearerToken(request.headers.authorization);
  if (bearer !== undefined) return keys.verify(bearer);
  const ticket = request.offeredProtocols?.find((entry) => entry.startsWith(TICKET_PREFIX));
  return ticket === undefined ? undefined : await tickets.redeem(ticket.slice(TICKET_PREFIX.length));
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
