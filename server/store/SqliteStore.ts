import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import Database from 'libsql';
import { MemoryBudgets } from './MemoryBudgets.js';
import { OneProcessStore } from './OneProcessStore.js';
import {
  type BeginTurnResult,
  type NewSession,
  type NewTurn,
  type OwnerBounds,
  type OwnerRefusal,
  type OwnerUsage,
  type Store,
  type StoredChunk,
  type StoredGeneration,
  type StoredMessage,
  type StoredOutcome,
  type StoredResponse,
  type StoredSession,
  StoreOpenError,
  StoreUnavailable,
  type TurnEnd,
} from './Store.js';
import { migrate } from './sqliteSchema.js';
import { answerMessage, contentOf, interruptedOutcome, isEmptyTurn, toolFieldsOf } from './turns.js';

type Row = Record<string, unknown>;
const SWEEP_EVERY_MS = 60_000;

/**
 * The embedded default (`--store sqlite:PATH`): one file in WAL mode, held exclusively by this
 * process (a second server on the same file is refused), so everything a conversation is
 * survives a restart or a crash. Rate-limit budgets stay in memory: one instance has no one to
 * share them with. Each chunk is written as it streams (about 10 µs: synchronous=NORMAL, so a
 * process crash loses nothing, a power cut at most the last moments); a turn ends in one transaction.
 */
export class SqliteStore extends OneProcessStore implements Store {
  readonly kind = 'sqlite';
  readonly budgets = new MemoryBudgets();
  private readonly sweeper: NodeJS.Timeout;
  /** Each SQL text prepared once: chunks are written per token, and preparing costs more than running. */
  private readonly statements = new Map<string, Database.Statement>();
  private writeError: string | undefined;

  private constructor(
    private readonly db: Database.Database,
    readonly location: string,
  ) {
    super();
    this.sweeper = setInterval(() => this.sweep(), SWEEP_EVERY_MS).unref();
  }

  /** Opens (creating or migrating) the store at `path`; interrupts what a previous process left running. */
  static open(path: string): SqliteStore {
    mkdirSync(dirname(path), { recursive: true });
    let db: Database.Database | undefined;
    try {
      db = new Database(path);
      db.exec('PRAGMA locking_mode = EXCLUSIVE');
      db.exec('PRAGMA journal_mode = WAL');
      db.exec('PRAGMA synchronous = NORMAL');
      db.exec('PRAGMA foreign_keys = ON');
      migrate(db, path);
    } catch (error) {
      db?.close();
      if (error instanceof StoreOpenError) throw error;
      const { code, message } = error as { code?: string; message: string };
      const why =
        code === 'SQLITE_BUSY'
          ? 'another process holds it (one server per SQLite file; use --store redis://… for many)'
          : code === 'SQLITE_NOTADB' || code === 'SQLITE_CORRUPT'
            ? 'it is not a valid SQLite database (corrupt, or another kind of file)'
            : message;
      throw new StoreOpenError(`Cannot open the store ${path}: ${why}`);
    }
    const store = new SqliteStore(db, path);
    store.interruptLeftovers();
    store.sweep();
    return store;
  }

  unavailableReason(): string | undefined {
    return this.writeError;
  }

  async createSession(session: NewSession, bounds: OwnerBounds): Promise<OwnerRefusal | undefined> {
    return this.write(() => {
      const now = Date.now();
      const usage = this.usageOf(session.ownerKey, now);
      const chars = session.system?.length ?? 0;
      if (usage.sessions >= bounds.maxSessionsPerKey) return { limit: 'sessions', usage } as const;
      if (usage.chars + chars > bounds.maxCharsPerKey) return { limit: 'chars', usage } as const;
      this.statement(
        'INSERT INTO sessions (id, owner, token_hash, chars, active_gen, ttl_ms, expires_at) VALUES (?, ?, ?, ?, NULL, ?, ?)',
      ).run(session.id, session.ownerKey, session.resumeTokenHash, chars, session.ttlMs, now + session.ttlMs);
      if (session.system !== undefined && session.system !== '') {
        this.insertMessages(session.id, 0, [{ role: 'system', content: session.system }]);
      }
      return undefined;
    });
  }

  async loadSession(sessionId: string): Promise<StoredSession | undefined> {
    return this.write(() => {
      const now = Date.now();
      const row = this.statement(
        'SELECT id, owner, token_hash, chars, active_gen, ttl_ms FROM sessions WHERE id = ? AND expires_at > ?',
      ).get(sessionId, now) as Row | undefined;
      if (row === undefined) return undefined;
      this.statement('UPDATE sessions SET expires_at = ? WHERE id = ?').run(now + Number(row.ttl_ms), sessionId);
      const messages = this.statement(
        'SELECT role, content, finish, tools_json FROM messages WHERE session_id = ? ORDER BY idx',
      ).all(sessionId) as Row[];
      return {
        id: String(row.id),
        ownerKey: String(row.owner),
        resumeTokenHash: String(row.token_hash),
        messages: messages.map(messageOf),
        chars: Number(row.chars),
        activeGenId: row.active_gen === null ? undefined : String(row.active_gen),
      };
    });
  }

  async deleteSession(sessionId: string): Promise<void> {
    this.write(() => this.statement('DELETE FROM sessions WHERE id = ?').run(sessionId));
  }

  async ownerUsage(ownerKey: string): Promise<OwnerUsage> {
    return this.write(() => this.usageOf(ownerKey, Date.now()));
  }

  async beginTurn(turn: NewTurn): Promise<BeginTurnResult> {
    return this.write(() => {
      const row = this.statement('SELECT active_gen FROM sessions WHERE id = ? AND expires_at > ?').get(
        turn.sessionId,
        Date.now(),
      ) as Row | undefined;
      if (row === undefined) return { ok: false, reason: 'not_found' } as const;
      if (row.active_gen !== null) return { ok: false, reason: 'busy', activeGenId: String(row.active_gen) } as const;
      this.statement('UPDATE sessions SET active_gen = ? WHERE id = ?').run(turn.genId, turn.sessionId);
      this.statement(
        'INSERT INTO generations (id, session_id, owner, user_json, outcome_json, ttl_ms, expires_at) VALUES (?, ?, ?, ?, NULL, ?, NULL)',
      ).run(turn.genId, turn.sessionId, turn.ownerKey, JSON.stringify(turn.user), turn.transcriptTtlMs);
      return { ok: true } as const;
    });
  }

  appendChunks(genId: string, chunks: readonly StoredChunk[]): void {
    try {
      const insert = this.statement('INSERT INTO chunks (gen_id, seq, text, channel) VALUES (?, ?, ?, ?)');
      for (const chunk of chunks) insert.run(genId, chunk.seq, chunk.text, chunk.channel);
    } catch (error) {
      this.writeError = `writing to ${this.location} failed: ${(error as Error).message}`;
    }
  }

  async endTurn(end: TurnEnd): Promise<void> {
    this.write(() => this.endTurnNow(end));
  }

  async loadGeneration(genId: string): Promise<StoredGeneration | undefined> {
    return this.write(() => this.generationOf(genId));
  }

  async saveResponse(response: StoredResponse, ttlMs: number): Promise<void> {
    this.write(() =>
      this.statement('INSERT OR REPLACE INTO responses (id, owner, body, expires_at) VALUES (?, ?, ?, ?)').run(
        response.id,
        response.ownerKey,
        response.body,
        Date.now() + ttlMs,
      ),
    );
  }

  async loadResponse(responseId: string): Promise<StoredResponse | undefined> {
    const row = this.write(() =>
      this.statement('SELECT owner, body, expires_at FROM responses WHERE id = ?').get(responseId),
    ) as Row | undefined;
    if (row === undefined || Number(row.expires_at) <= Date.now()) return undefined;
    return { id: responseId, ownerKey: String(row.owner), body: String(row.body) };
  }

  async issueTicket(ticketHash: string, keyName: string, ttlMs: number): Promise<void> {
    this.write(() =>
      this.statement('INSERT OR REPLACE INTO tickets (hash, key_name, expires_at) VALUES (?, ?, ?)').run(
        ticketHash,
        keyName,
        Date.now() + ttlMs,
      ),
    );
  }

  async redeemTicket(ticketHash: string): Promise<string | undefined> {
    return this.write(() => {
      const row = this.statement('DELETE FROM tickets WHERE hash = ? RETURNING key_name, expires_at').get(ticketHash) as
        | Row
        | undefined;
      return row !== undefined && Number(row.expires_at) > Date.now() ? String(row.key_name) : undefined;
    });
  }

  async close(): Promise<void> {
    clearInterval(this.sweeper);
    this.db.close();
  }

  private endTurnNow(end: TurnEnd): void {
    const run = this.db.transaction(() => {
      const generation = this.statement('SELECT ttl_ms FROM generations WHERE id = ?').get(end.genId) as
        | Row
        | undefined;
      if (generation !== undefined) {
        this.statement('UPDATE generations SET outcome_json = ?, expires_at = ? WHERE id = ?').run(
          JSON.stringify(end.outcome),
          Date.now() + Number(generation.ttl_ms),
          end.genId,
        );
      }
      this.statement('UPDATE sessions SET active_gen = NULL WHERE id = ? AND active_gen = ?').run(
        end.sessionId,
        end.genId,
      );
      if (end.turn === undefined || isEmptyTurn(end.turn)) return;
      const session = this.statement('SELECT id FROM sessions WHERE id = ?').get(end.sessionId);
      if (session === undefined) return;
      const added = [end.turn.user, answerMessage(end.turn.answer, end.outcome.finish, end.turn.toolCalls)];
      const next = this.statement('SELECT COALESCE(MAX(idx) + 1, 0) AS next FROM messages WHERE session_id = ?').get(
        end.sessionId,
      ) as Row;
      this.insertMessages(end.sessionId, Number(next.next), added);
      const chars = added.reduce((sum, message) => sum + message.content.length, 0);
      this.statement('UPDATE sessions SET chars = chars + ? WHERE id = ?').run(chars, end.sessionId);
    });
    run();
  }

  private generationOf(genId: string): (StoredGeneration & { user: StoredMessage }) | undefined {
    const row = this.statement(
      'SELECT id, session_id, owner, user_json, outcome_json FROM generations WHERE id = ?',
    ).get(genId) as Row | undefined;
    if (row === undefined) return undefined;
    const chunks = this.statement('SELECT seq, text, channel FROM chunks WHERE gen_id = ? ORDER BY seq').all(
      genId,
    ) as Row[];
    return {
      id: String(row.id),
      sessionId: String(row.session_id),
      ownerKey: String(row.owner),
      user: JSON.parse(String(row.user_json)) as StoredMessage,
      chunks: chunks.map((chunk) => ({
        seq: Number(chunk.seq),
        text: String(chunk.text),
        channel: String(chunk.channel) as StoredChunk['channel'],
      })),
      outcome: row.outcome_json === null ? undefined : (JSON.parse(String(row.outcome_json)) as StoredOutcome),
    };
  }

  /** What a killed process left running ends as interrupted, with its partial answer in the history. */
  private interruptLeftovers(): void {
    const running = this.statement('SELECT id FROM generations WHERE outcome_json IS NULL').all() as Row[];
    for (const { id } of running) {
      const generation = this.generationOf(String(id));
      if (generation === undefined) continue;
      this.endTurnNow({
        sessionId: generation.sessionId,
        genId: generation.id,
        outcome: interruptedOutcome(generation.chunks),
        turn: { user: generation.user, answer: contentOf(generation.chunks) },
      });
    }
  }

  private sweep(): void {
    // A failure shows on /readyz (through write); the next sweep tries again.
    this.tryWrite(() => {
      const now = Date.now();
      this.statement('DELETE FROM sessions WHERE expires_at <= ?').run(now);
      this.statement('DELETE FROM generations WHERE expires_at <= ?').run(now);
      this.statement('DELETE FROM responses WHERE expires_at <= ?').run(now);
      this.statement('DELETE FROM tickets WHERE expires_at <= ?').run(now);
    });
  }

  private usageOf(ownerKey: string, now: number): OwnerUsage {
    const row = this.statement(
      'SELECT COUNT(*) AS sessions, COALESCE(SUM(chars), 0) AS chars FROM sessions WHERE owner = ? AND expires_at > ?',
    ).get(ownerKey, now) as Row;
    return { sessions: Number(row.sessions), chars: Number(row.chars) };
  }

  private insertMessages(sessionId: string, from: number, messages: readonly StoredMessage[]): void {
    const insert = this.statement(
      'INSERT INTO messages (session_id, idx, role, content, finish, tools_json) VALUES (?, ?, ?, ?, ?, ?)',
    );
    for (const [offset, message] of messages.entries()) {
      const tools = toolFieldsOf(message);
      const toolsJson = tools === undefined ? null : JSON.stringify(tools);
      insert.run(sessionId, from + offset, message.role, message.content, message.finish ?? null, toolsJson);
    }
  }

  private tryWrite(statement: () => void): void {
    try {
      this.write(statement);
    } catch {}
  }

  private statement(sql: string): Database.Statement {
    let prepared = this.statements.get(sql);
    if (prepared === undefined) {
      prepared = this.db.prepare(sql);
      this.statements.set(sql, prepared);
    }
    return prepared;
  }

  /** Runs a statement; a failure (disk full, I/O) becomes StoreUnavailable and is shown on /readyz. */
  private write<T>(statement: () => T): T {
    try {
      const result = statement();
      this.writeError = undefined;
      return result;
    } catch (error) {
      this.writeError = `writing to ${this.location} failed: ${(error as Error).message}`;
      throw new StoreUnavailable(this.writeError);
    }
  }
}

function messageOf(row: Row): StoredMessage {
  const message: StoredMessage = { role: String(row.role) as StoredMessage['role'], content: String(row.content) };
  if (row.finish !== null) message.finish = String(row.finish) as StoredMessage['finish'];
  return row.tools_json == null ? message : { ...message, ...(JSON.parse(String(row.tools_json)) as object) };
}
