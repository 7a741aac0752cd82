import { createHash } from 'node:crypto';
import { nanoid } from 'nanoid';

/** The subprotocol entry that carries a ticket: `ticket.<ticket>`. */
export const TICKET_PREFIX = 'ticket.';

/**
 * Single-use, short-lived tickets that let a browser open a WebSocket for a key it never holds.
 * Stored by hash; redeeming one deletes it.
 */
export class TicketStore {
  private readonly tickets = new Map<string, { keyName: string; expiresAt: number }>();

  constructor(private readonly ttlMs: number) {}

  issue(keyName: string, now = Date.now()): { ticket: string; expiresInMs: number } {
    this.sweep(now);
    const ticket = nanoid(32);
    this.tickets.set(hash(ticket), { keyName, expiresAt: now + this.ttlMs });
    return { ticket, expiresInMs: this.ttlMs };
  }

  /** The key name the ticket was issued for, once; undefined if unknown, used or expired. */
  redeem(ticket: string, now = Date.now()): string | undefined {
    const id = hash(ticket);
    const entry = this.tickets.get(id);
    this.tickets.delete(id);
    return entry !== undefined && entry.expiresAt > now ? entry.keyName : undefined;
  }

  private sweep(now: number): void {
    for (const [id, entry] of this.tickets) if (entry.expiresAt <= now) this.tickets.delete(id);
  }
}

function hash(ticket: string): string {
  return createHash('sha256').update(ticket).digest('hex');
}
