import type { Problem } from './Problem.js';

/** The embedding site's backend answered without a ticket; `status` is its HTTP status (0: unreachable). */
export class TicketError extends Error {
  override name = 'TicketError';
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

/**
 * Asks the embedding site's backend for a single-use ticket: `POST ticketUrl` with the site's own
 * cookies, answered with what the chat server's `POST /v1/tickets` gave it (`{ticket, subprotocol}`;
 * either field is enough). A POST, so that nothing caches it and a cross-site page cannot fetch one
 * with a mere link.
 */
export async function fetchTicket(ticketUrl: string): Promise<string> {
  let response: Response;
  try {
    response = await fetch(ticketUrl, {
      method: 'POST',
      credentials: 'same-origin',
      cache: 'no-store',
      headers: { accept: 'application/json' },
    });
  } catch {
    throw new TicketError(0, 'unreachable');
  }
  if (!response.ok) throw new TicketError(response.status, response.statusText);
  const body = (await response.json().catch(() => undefined)) as
    | { ticket?: unknown; subprotocol?: unknown }
    | undefined;
  if (typeof body?.ticket === 'string' && body.ticket !== '') return body.ticket;
  if (typeof body?.subprotocol === 'string' && body.subprotocol.startsWith('ticket.'))
    return body.subprotocol.slice('ticket.'.length);
  throw new TicketError(response.status, 'no ticket in the answer');
}

/** What a failed ticket request means for the person: a refusal by the site is final, a hiccup is retried. */
export function ticketProblem(ticketUrl: string, error: unknown): Problem {
  const status = error instanceof TicketError ? error.status : 0;
  if (status === 0) return { text: `Could not reach ${ticketUrl} for a chat ticket. Retrying…`, final: false };
  if (status === 401 || status === 403)
    return {
      text: `This site did not hand out a chat ticket (${status}): sign in to it, then try again.`,
      final: true,
    };
  if (status === 408 || status === 429 || status >= 500)
    return { text: `The site's ticket address answered ${status}. Retrying…`, final: false };
  const why = error instanceof TicketError ? error.message : String(error);
  return {
    text: `The widget's ticket-url (${ticketUrl}) answered ${status} (${why}): check its address.`,
    final: true,
  };
}
