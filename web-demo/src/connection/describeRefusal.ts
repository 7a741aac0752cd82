import { PROTOCOL_VERSION } from '../../../protocol/version.js';
import type { Problem } from './Problem.js';
import type { ProbeAnswer } from './probeUpgrade.js';

export type RefusalContext = {
  /** The chat server's host, as people know it. */
  server: string;
  /** This page's origin: what the server's allowlist must name. */
  origin: string;
  ticketUrl: string | undefined;
};

/** A refusal the probe cannot pin down; retried a few times, then given up on. */
export type Described = Problem & { unexplained?: true };

/**
 * A failed upgrade explained from the probe's answer. 403 (origin), 401 without a ticket-url and a
 * version the server does not speak are final. A 401 at the probe when the page did bring a ticket
 * means the upgrade failed for a reason a plain request cannot see: too many connections for the
 * site's key (429) or a ticket the server would not take (401).
 */
export function describeRefusal(probe: ProbeAnswer, { server, origin, ticketUrl }: RefusalContext): Described {
  if (!probe.reachable) return { text: `Cannot reach the chat server at ${server}. Retrying…`, final: false };
  const { status, code, message } = probe;
  if (code === 'not_ready') return { text: 'The chat server is starting (loading its model). Waiting…', final: false };
  if (code === 'shutting_down') return { text: 'The chat server is restarting. Waiting for it…', final: false };
  if (code === 'forbidden' && message.startsWith('Origin'))
    return {
      text: `This page (${origin}) may not use the chat server at ${server}. Its operator can allow it by adding ${origin} to --allowed-origins (ALLOWED_ORIGINS).`,
      final: true,
    };
  if (code === 'forbidden') return { text: `The chat server at ${server} refused this page: ${message}`, final: true };
  if (code === 'unauthorized' && ticketUrl === undefined)
    return {
      text: `The chat server at ${server} needs an API key. A page gets in with a ticket: give the widget a ticket-url, an address on this site's backend that returns one from the server's POST /v1/tickets.`,
      final: true,
    };
  if (code === 'unauthorized')
    return {
      text: 'The chat server refused the connection: this site has too many open connections, or it did not take the ticket. Retrying…',
      final: false,
      unexplained: true,
    };
  if (code === 'unsupported_version' && !message.includes(PROTOCOL_VERSION))
    return {
      text: `This widget speaks ${PROTOCOL_VERSION}, which the chat server at ${server} does not: load llm-chat.js from that server.`,
      final: true,
    };
  if (code === 'unsupported_version')
    return { text: 'The connection failed. Retrying…', final: false, unexplained: true };
  return { text: `The chat server answered ${status} (${code ?? 'no code'}: ${message}). Retrying…`, final: false };
}
