import { createHash, timingSafeEqual } from 'node:crypto';
import { LRUCache } from 'lru-cache';
import { nanoid } from 'nanoid';
import { Session } from './Session.js';

export type SessionStoreOptions = {
  maxSessions: number;
  ttlMs: number;
  /** Called when a session is forgotten (expired or evicted). */
  onForget?: (session: Session) => void;
};

/**
 * All sessions, bounded in count and forgotten after `ttlMs` unused. Resume tokens are kept
 * only as hashes and compared in constant time.
 */
export class SessionStore {
  private readonly sessions: LRUCache<string, Session>;

  constructor(options: SessionStoreOptions) {
    this.sessions = new LRUCache({
      max: options.maxSessions,
      ttl: options.ttlMs,
      updateAgeOnGet: true,
      // Expired sessions leave on their own, so their budget (sessions per key) is given back.
      ttlAutopurge: true,
      dispose: (session) => options.onForget?.(session),
    });
  }

  get size(): number {
    return this.sessions.size;
  }

  create(ownerKey: string, clientKey: string, system: string | undefined): { session: Session; resumeToken: string } {
    const resumeToken = nanoid(32);
    const session = new Session(`s_${nanoid(16)}`, ownerKey, clientKey, hashToken(resumeToken), system);
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
}

function hashToken(token: string): Buffer {
  return createHash('sha256').update(token).digest();
}
