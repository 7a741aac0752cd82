import { createHash, timingSafeEqual } from 'node:crypto';
import { LRUCache } from 'lru-cache';
import { nanoid } from 'nanoid';
import type { Refusal } from '../../protocol/index.js';
import type { ToolCall } from '../engine/Engine.js';
import type { GenerationOutcome } from '../scheduler/Generation.js';
import type { OwnerRefusal, Store, StoredChunk, StoredGeneration, StoredMessage } from '../store/Store.js';
import { Session } from './Session.js';

export type SessionLimits = {
  /** Sessions this process keeps at hand (the store keeps them all until they expire). */
  maxSessions: number;
  ttlMs: number;
  /** Sessions one owner (API key) may keep; past it new ones are refused. */
  maxSessionsPerKey: number;
  /** Characters of system prompt and history one session may hold. */
  maxSessionChars: number;
  /** Characters of system prompts and history one owner may hold over all its sessions. */
  maxCharsPerKey: number;
  /** How long a finished generation's transcript stays for resume. */
  transcriptTtlMs: number;
};

/**
 * Sessions over the store: created and reattached there, bounded in count and characters per
 * owner and in characters per session (so that no key crowds out another or grows the store
 * without bound), with this process's working copies at hand. Resume tokens are kept only as
 * hashes and compared in constant time. A turn is begun, streamed and ended through here, so the
 * store always holds what clients were sent.
 */
export class SessionStore {
  private readonly local: LRUCache<string, Session>;

  constructor(
    private readonly store: Store,
    private readonly limits: SessionLimits,
    /** Whether a generation runs in this process (a busy session elsewhere may be an orphan). */
    private readonly runsHere: (genId: string) => boolean,
  ) {
    this.local = new LRUCache({ max: limits.maxSessions, ttl: limits.ttlMs, updateAgeOnGet: true });
  }

  /** Sessions this process has at hand. */
  get size(): number {
    return this.local.size;
  }

  /** Sessions the owner keeps now, for the `rate_limits` frame. */
  async countOf(ownerKey: string): Promise<number> {
    return (await this.store.ownerUsage(ownerKey)).sessions;
  }

  async create(
    ownerKey: string,
    system: string | undefined,
  ): Promise<{ session: Session; resumeToken: string } | Refusal> {
    const resumeToken = nanoid(32);
    const id = `s_${nanoid(16)}`;
    const resumeTokenHash = hashToken(resumeToken);
    const bounds = { maxSessionsPerKey: this.limits.maxSessionsPerKey, maxCharsPerKey: this.limits.maxCharsPerKey };
    const refused = await this.store.createSession(
      { id, ownerKey, resumeTokenHash, system, ttlMs: this.limits.ttlMs },
      bounds,
    );
    if (refused !== undefined) return this.ownerRefusal(refused);
    const messages = system === undefined || system === '' ? [] : [{ role: 'system' as const, content: system }];
    const session = new Session({
      id,
      ownerKey,
      resumeTokenHash,
      messages,
      chars: system?.length ?? 0,
      activeGenId: undefined,
    });
    this.local.set(id, session);
    return { session, resumeToken };
  }

  /**
   * The session, if the token matches and it belongs to `ownerKey`; otherwise undefined. Read from
   * the store (another instance may have added turns); a turn left running by a dead instance is
   * ended first, as interrupted, with its partial answer in the history.
   */
  async reattach(sessionId: string, resumeToken: string, ownerKey: string): Promise<Session | undefined> {
    let stored = await this.store.loadSession(sessionId);
    if (stored === undefined || stored.ownerKey !== ownerKey) return undefined;
    const expected = Buffer.from(stored.resumeTokenHash, 'hex');
    const given = Buffer.from(hashToken(resumeToken), 'hex');
    if (expected.length !== given.length || !timingSafeEqual(expected, given)) return undefined;
    const { activeGenId } = stored;
    if (activeGenId !== undefined && !this.runsHere(activeGenId)) {
      const settled = await this.store.settleOrphan(activeGenId);
      if (settled?.outcome !== undefined) stored = (await this.store.loadSession(sessionId)) ?? stored;
    }
    const here = this.local.get(sessionId);
    // Keep this process's copy (and its token counts) when the store holds nothing newer.
    if (here !== undefined && here.messages.length === stored.messages.length) {
      here.activeGenId = stored.activeGenId;
      return here;
    }
    const session = new Session(stored);
    this.local.set(sessionId, session);
    return session;
  }

  /** A session this connection opened: at hand, or read again from the store. */
  async get(sessionId: string): Promise<Session | undefined> {
    const here = this.local.get(sessionId);
    if (here !== undefined) return here;
    const stored = await this.store.loadSession(sessionId);
    if (stored === undefined) return undefined;
    const session = new Session(stored);
    this.local.set(sessionId, session);
    return session;
  }

  /** Forgets a session at its owner's request (a running answer goes on, but is no longer recorded). */
  async forget(sessionId: string): Promise<void> {
    this.local.delete(sessionId);
    await this.store.deleteSession(sessionId);
  }

  /** Whether a turn of `chars` more characters may start on the session; the refusal if not. */
  async checkTurn(session: Session, chars: number): Promise<Refusal | undefined> {
    const { maxSessionChars, maxCharsPerKey } = this.limits;
    if (session.chars + chars > maxSessionChars) {
      return {
        code: 'session_full',
        message:
          `This session holds ${session.chars} of its ${maxSessionChars} characters of history ` +
          '(--max-session-chars): open a new session to go on',
      };
    }
    const usage = await this.store.ownerUsage(session.ownerKey);
    if (usage.chars + chars <= maxCharsPerKey) return undefined;
    return this.ownerRefusal({ limit: 'chars', usage });
  }

  /**
   * Claims the session for a new turn (in the store, so that no other instance starts one at the
   * same time), records the user's message with the generation, and brings this copy up to date
   * with the store. A turn left running by a dead instance is settled first.
   */
  async beginTurn(
    session: Session,
    genId: string,
    user: StoredMessage,
  ): Promise<(Refusal & { activeGenId?: string }) | undefined> {
    const turn = {
      sessionId: session.id,
      genId,
      ownerKey: session.ownerKey,
      user,
      transcriptTtlMs: this.limits.transcriptTtlMs,
    };
    let begun = await this.store.beginTurn(turn);
    if (!begun.ok && begun.reason === 'busy' && !this.runsHere(begun.activeGenId)) {
      const orphan = await this.store.settleOrphan(begun.activeGenId);
      if (orphan?.outcome !== undefined) {
        await this.refresh(session);
        begun = await this.store.beginTurn(turn);
      }
    }
    if (begun.ok) {
      session.activeGenId = genId;
      // Another instance may have added turns since this copy was read: the prompt is built from the store's.
      await this.refresh(session);
      return undefined;
    }
    if (begun.reason === 'not_found') {
      this.local.delete(session.id);
      return { code: 'not_found', message: 'The session has expired or was closed; open a new one' };
    }
    return {
      code: 'session_busy',
      message: 'This session is already generating; wait for generation.done or cancel it',
      activeGenId: begun.activeGenId,
    };
  }

  /** Writes streamed chunks to the generation's transcript, before they are sent to clients. */
  recordChunks(genId: string, chunks: readonly StoredChunk[]): void {
    this.store.appendChunks(genId, chunks);
  }

  /**
   * Ends a turn: the outcome, and the user's message (or the tool results) with the answer and
   * its tool calls in the history, in one transaction.
   */
  async endTurn(
    session: Session,
    genId: string,
    user: StoredMessage,
    answer: string,
    outcome: GenerationOutcome,
    toolCalls: readonly ToolCall[] = [],
  ) {
    if (session.activeGenId === genId) session.endTurn(user, answer, outcome.finish, toolCalls);
    await this.store.endTurn({ sessionId: session.id, genId, outcome, turn: { user, answer, toolCalls } });
  }

  /** Lets a claimed turn go without an answer (it was refused before it could start). */
  async abandonTurn(session: Session, genId: string, outcome: GenerationOutcome): Promise<void> {
    if (session.activeGenId === genId) session.activeGenId = undefined;
    await this.store.endTurn({ sessionId: session.id, genId, outcome, turn: undefined });
  }

  /** A generation that does not run here: from the store, settled as interrupted if its instance is gone. */
  loadGeneration(genId: string): Promise<StoredGeneration | undefined> {
    return this.store.settleOrphan(genId);
  }

  /** Asks the instance running a generation to cancel it; false when none took the request. */
  requestCancel(genId: string): Promise<boolean> {
    return this.store.requestCancel(genId);
  }

  private async refresh(session: Session): Promise<void> {
    const stored = await this.store.loadSession(session.id);
    if (stored === undefined || stored.messages.length === session.messages.length) return;
    session.messages.splice(0, session.messages.length, ...stored.messages);
    session.chars = stored.chars;
  }

  private ownerRefusal({ limit, usage }: OwnerRefusal): Refusal {
    if (limit === 'sessions') {
      return {
        code: 'rate_limited',
        message:
          `At most ${this.limits.maxSessionsPerKey} sessions per key (--max-sessions-per-key): ` +
          'close the ones you are done with (session.close with forget: true), or wait until unused ones expire',
        retryAfterMs: this.limits.ttlMs,
      };
    }
    return {
      code: 'rate_limited',
      message:
        `This key's sessions hold ${usage.chars} of its ${this.limits.maxCharsPerKey} characters of history ` +
        '(--max-history-chars-per-key): close sessions you are done with (session.close with forget: true), ' +
        'or wait until unused ones expire',
      retryAfterMs: this.limits.ttlMs,
    };
  }
}

function hashToken(token: string): string {
  return createHash('sha256').update(token).digest('hex');
}
