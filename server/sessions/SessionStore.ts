import { createHash, timingSafeEqual } from 'node:crypto';
import { LRUCache } from 'lru-cache';
import { nanoid } from 'nanoid';
import type { Refusal } from '../../protocol/index.js';
import type { ChatMessage } from '../engine/Engine.js';
import { Session } from './Session.js';

export type SessionLimits = {
  /** Sessions kept server-wide; past it the least recently used leave first. */
  maxSessions: number;
  ttlMs: number;
  /** Sessions one owner (API key) may keep; past it new ones are refused. */
  maxSessionsPerKey: number;
  /** Characters of system prompt and history one session may hold. */
  maxSessionChars: number;
  /** Characters of system prompts and history one owner may hold over all its sessions. */
  maxCharsPerKey: number;
};

/** What one owner keeps: its sessions (for the count) and their characters. */
type OwnerUsage = { sessions: number; chars: number };

/**
 * All sessions, bounded in count server-wide and per owner, and in characters per session and
 * per owner, so that no key can crowd out another's sessions or grow the server's memory without
 * bound. Unused sessions are forgotten after `ttlMs`. Resume tokens are kept only as hashes and
 * compared in constant time.
 */
export class SessionStore {
  private readonly sessions: LRUCache<string, Session>;
  private readonly owners = new Map<string, OwnerUsage>();

  constructor(private readonly limits: SessionLimits) {
    this.sessions = new LRUCache({
      max: limits.maxSessions,
      ttl: limits.ttlMs,
      updateAgeOnGet: true,
      // Expired sessions leave on their own, so their owner's budget is given back.
      ttlAutopurge: true,
      dispose: (session) => this.release(session),
    });
  }

  get size(): number {
    return this.sessions.size;
  }

  /** Sessions the owner keeps now, for the `rate_limits` frame. */
  countOf(ownerKey: string): number {
    return this.owners.get(ownerKey)?.sessions ?? 0;
  }

  create(ownerKey: string, system: string | undefined): { session: Session; resumeToken: string } | Refusal {
    const owner = this.owner(ownerKey);
    if (owner.sessions >= this.limits.maxSessionsPerKey) {
      return {
        code: 'rate_limited',
        message:
          `At most ${this.limits.maxSessionsPerKey} sessions per key (--max-sessions-per-key): ` +
          'close the ones you are done with (session.close with forget: true), or wait until unused ones expire',
        retryAfterMs: this.limits.ttlMs,
      };
    }
    const chars = system?.length ?? 0;
    const full = this.checkChars(owner, chars);
    if (full !== undefined) return full;
    const resumeToken = nanoid(32);
    const session = new Session(`s_${nanoid(16)}`, ownerKey, hashToken(resumeToken), system);
    owner.sessions += 1;
    owner.chars += chars;
    this.sessions.set(session.id, session);
    return { session, resumeToken };
  }

  /** The session, if the token matches and it belongs to `ownerKey`; otherwise undefined. */
  reattach(sessionId: string, resumeToken: string, ownerKey: string): Session | undefined {
    const session = this.sessions.get(sessionId);
    if (session === undefined || session.ownerKey !== ownerKey) return undefined;
    return timingSafeEqual(session.resumeTokenHash, hashToken(resumeToken)) ? session : undefined;
  }

  get(sessionId: string): Session | undefined {
    return this.sessions.get(sessionId);
  }

  /** Forgets a session at its owner's request (a running answer goes on, but is no longer recorded). */
  forget(sessionId: string): void {
    this.sessions.delete(sessionId);
  }

  /** Whether a turn of `chars` more characters may start on the session; the refusal if not. */
  checkTurn(session: Session, chars: number): Refusal | undefined {
    const { maxSessionChars } = this.limits;
    if (session.chars + chars > maxSessionChars) {
      return {
        code: 'session_full',
        message:
          `This session holds ${session.chars} of its ${maxSessionChars} characters of history ` +
          '(--max-session-chars): open a new session to go on',
      };
    }
    return this.checkChars(this.owner(session.ownerKey), chars);
  }

  /** Records a finished turn in the session and counts its characters against the owner. */
  addTurn(session: Session, userMessage: ChatMessage, answer: string): void {
    const before = session.chars;
    session.endTurn(userMessage, answer);
    // A session forgotten while it answered keeps no budget.
    if (this.sessions.has(session.id)) this.owner(session.ownerKey).chars += session.chars - before;
  }

  private checkChars(owner: OwnerUsage, chars: number): Refusal | undefined {
    const { maxCharsPerKey } = this.limits;
    if (owner.chars + chars <= maxCharsPerKey) return undefined;
    return {
      code: 'rate_limited',
      message:
        `This key's sessions hold ${owner.chars} of its ${maxCharsPerKey} characters of history ` +
        '(--max-history-chars-per-key): close sessions you are done with (session.close with forget: true), ' +
        'or wait until unused ones expire',
      retryAfterMs: this.limits.ttlMs,
    };
  }

  private owner(ownerKey: string): OwnerUsage {
    let owner = this.owners.get(ownerKey);
    if (owner === undefined) {
      owner = { sessions: 0, chars: 0 };
      this.owners.set(ownerKey, owner);
    }
    return owner;
  }

  private release(session: Session): void {
    const owner = this.owners.get(session.ownerKey);
    if (owner === undefined) return;
    owner.sessions -= 1;
    owner.chars -= session.chars;
    if (owner.sessions <= 0) this.owners.delete(session.ownerKey);
  }
}

function hashToken(token: string): Buffer {
  return createHash('sha256').update(token).digest();
}
