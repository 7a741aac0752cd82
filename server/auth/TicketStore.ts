import { createHash } from 'node:crypto';
import { nanoid } from 'nanoid';
import type { Store } from '../store/Store.js';

/** The subprotocol entry that carries a ticket: `ticket.<ticket>`. */
export const TICKET_PREFIX = 'ticket.';

/**
 * Single-use, short-lived tickets that let a browser open a WebSocket for a key it never holds.
 * Kept in the store by hash, so that a ticket issued by one instance is redeemed, once, on any.
 */
export class TicketStore {
  constructor(
    private readonly store: Pick<Store, 'issueTicket' | 'redeemTicket'>,
    private readonly ttlMs: number,
  ) {}

  async issue(keyName: string): Promise<{ ticket: string; expiresInMs: number }> {
    const ticket = nanoid(32);
    await this.store.issueTicket(hash(ticket), keyName, this.ttlMs);
    return { ticket, expiresInMs: this.ttlMs };
  }

  /** The key name the ticket was issued for, once; undefined if unknown, used or expired. */
  redeem(ticket: string): Promise<string | undefined> {
    return this.store.redeemTicket(hash(ticket));
  }
}

function hash(ticket: string): string {
  return createHash('sha256').update(ticket).digest('hex');
}
