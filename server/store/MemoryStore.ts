import { LRUCache } from 'lru-cache';
import { MemoryBudgets } from './MemoryBudgets.js';
import { OneProcessStore } from './OneProcessStore.js';
import type {
  BeginTurnResult,
  NewSession,
  NewTurn,
  OwnerBounds,
  OwnerRefusal,
  OwnerUsage,
  Store,
  StoredChunk,
  StoredGeneration,
  StoredMessage,
  StoredResponse,
  StoredSession,
  TurnEnd,
} from './Store.js';
import { answerMessage, isEmptyTurn } from './turns.js';

type MemorySession = Omit<StoredSession, 'messages'> & { messages: StoredMessage[] };
type MemoryGeneration = StoredGeneration & { user: StoredMessage; transcriptTtlMs: number };

/** Generations kept for resume at most (running ones are never evicted before they end). */
const GENERATIONS_KEPT = 10_000;

/**
 * The store in this process's memory (`--store memory`): nothing outlives the process. Also the
 * reference for the semantics of the others. Sessions past `maxSessions` leave least recently
 * used first.
 */
export class MemoryStore extends OneProcessStore implements Store {
  readonly kind = 'memory';
  readonly location = 'memory';
  readonly budgets = new MemoryBudgets();
  private readonly sessions: LRUCache<string, MemorySession>;
  private readonly owners = new Map<string, OwnerUsage>();
  private readonly generations = new LRUCache<string, MemoryGeneration>({ max: GENERATIONS_KEPT });
  private readonly tickets = new Map<string, { keyName: string; expiresAt: number }>();
  private readonly responses = new Map<string, { response: StoredResponse; expiresAt: number }>();

  constructor({ maxSessions }: { maxSessions: number }) {
    super();
    this.sessions = new LRUCache({
      max: maxSessions,
      ttlAutopurge: true,
      updateAgeOnGet: true,
      dispose: (session) => this.release(session),
    });
  }

  unavailableReason(): string | undefined {
    return undefined;
  }

  async createSession(session: NewSession, bounds: OwnerBounds): Promise<OwnerRefusal | undefined> {
    const usage = await this.ownerUsage(session.ownerKey);
    const chars = session.system?.length ?? 0;
    if (usage.sessions >= bounds.maxSessionsPerKey) return { limit: 'sessions', usage };
    if (usage.chars + chars > bounds.maxCharsPerKey) return { limit: 'chars', usage };
    const messages: StoredMessage[] =
      session.system === undefined || session.system === '' ? [] : [{ role: 'system', content: session.system }];
    const owner = this.owner(session.ownerKey);
    owner.sessions += 1;
    owner.chars += chars;
    this.sessions.set(
      session.id,
      {
        id: session.id,
        ownerKey: session.ownerKey,
        resumeTokenHash: session.resumeTokenHash,
        messages,
        chars,
        activeGenId: undefined,
      },
      { ttl: session.ttlMs },
    );
    return undefined;
  }

  async loadSession(sessionId: string): Promise<StoredSession | undefined> {
    const session = this.sessions.get(sessionId);
    return session === undefined ? undefined : { ...session, messages: [...session.messages] };
  }

  async deleteSession(sessionId: string): Promise<void> {
    this.sessions.delete(sessionId);
  }

  async ownerUsage(ownerKey: string): Promise<OwnerUsage> {
    this.sessions.purgeStale();
    const usage = this.owners.get(ownerKey);
    return { sessions: usage?.sessions ?? 0, chars: usage?.chars ?? 0 };
  }

  async beginTurn(turn: NewTurn): Promise<BeginTurnResult> {
    const session = this.sessions.get(turn.sessionId);
    if (session === undefined) return { ok: false, reason: 'not_found' };
    if (session.activeGenId !== undefined) return { ok: false, reason: 'busy', activeGenId: session.activeGenId };
    session.activeGenId = turn.genId;
    this.generations.set(turn.genId, {
      id: turn.genId,
      sessionId: turn.sessionId,
      ownerKey: turn.ownerKey,
      chunks: [],
      outcome: undefined,
      user: turn.user,
      transcriptTtlMs: turn.transcriptTtlMs,
    });
    return { ok: true };
  }

  appendChunks(genId: string, chunks: readonly StoredChunk[]): void {
    this.generations.get(genId)?.chunks.push(...chunks);
  }

  async endTurn(end: TurnEnd): Promise<void> {
    const generation = this.generations.get(end.genId);
    if (generation !== undefined) {
      generation.outcome = end.outcome;
      // Re-set with the resume window as its time to live, now that it has ended.
      this.generations.set(end.genId, generation, { ttl: generation.transcriptTtlMs });
    }
    const session = this.sessions.get(end.sessionId);
    if (session === undefined) return;
    if (session.activeGenId === end.genId) session.activeGenId = undefined;
    if (end.turn === undefined || isEmptyTurn(end.turn)) return;
    const added = [end.turn.user, answerMessage(end.turn.answer, end.outcome.finish, end.turn.toolCalls)];
    const chars = added.reduce((sum, message) => sum + message.content.length, 0);
    session.messages.push(...added);
    session.chars += chars;
    this.owner(session.ownerKey).chars += chars;
  }

  async loadGeneration(genId: string): Promise<StoredGeneration | undefined> {
    const generation = this.generations.get(genId);
    if (generation === undefined) return undefined;
    const { id, sessionId, ownerKey, chunks, outcome } = generation;
    return { id, sessionId, ownerKey, chunks: [...chunks], outcome };
  }

  async saveResponse(response: StoredResponse, ttlMs: number): Promise<void> {
    const now = Date.now();
    for (const [id, entry] of this.responses) if (entry.expiresAt <= now) this.responses.delete(id);
    this.responses.set(response.id, { response, expiresAt: now + ttlMs });
  }

  async loadResponse(responseId: string): Promise<StoredResponse | undefined> {
    const entry = this.responses.get(responseId);
    return entry !== undefined && entry.expiresAt > Date.now() ? entry.response : undefined;
  }

  async issueTicket(ticketHash: string, keyName: string, ttlMs: number): Promise<void> {
    const now = Date.now();
    for (const [hash, entry] of this.tickets) if (entry.expiresAt <= now) this.tickets.delete(hash);
    this.tickets.set(ticketHash, { keyName, expiresAt: now + ttlMs });
  }

  async redeemTicket(ticketHash: string): Promise<string | undefined> {
    const entry = this.tickets.get(ticketHash);
    this.tickets.delete(ticketHash);
    return entry !== undefined && entry.expiresAt > Date.now() ? entry.keyName : undefined;
  }

  async close(): Promise<void> {}

  private owner(ownerKey: string): OwnerUsage {
    let owner = this.owners.get(ownerKey);
    if (owner === undefined) {
      owner = { sessions: 0, chars: 0 };
      this.owners.set(ownerKey, owner);
    }
    return owner;
  }

  private release(session: MemorySession): void {
    const owner = this.owners.get(session.ownerKey);
    if (owner === undefined) return;
    owner.sessions -= 1;
    owner.chars -= session.chars;
    if (owner.sessions <= 0) this.owners.delete(session.ownerKey);
  }
}
