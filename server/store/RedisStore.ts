import { Redis } from 'ioredis';
import {
  BEGIN_TURN,
  BUDGET_PEEK,
  BUDGET_SETTLE,
  BUDGET_TAKE,
  CREATE_SESSION,
  DELETE_SESSION,
  FINISH_TURN,
  LOAD_SESSION,
  type LuaScript,
  OWNER_USAGE,
} from './redis/scripts.js';
import {
  type BeginTurnResult,
  type BucketName,
  type BudgetDenial,
  type BudgetLevels,
  type BudgetLimits,
  type BudgetRequest,
  type Budgets,
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
import { answerMessage, contentOf, interruptedOutcome, isEmptyTurn } from './turns.js';

/** Every key RedisStore writes starts with this. */
export const KEY_PREFIX = 'llmchat:';
/** An instance whose liveness key is older than this is gone: its running generations are orphans. */
export const INSTANCE_TTL_MS = 3000;
/** A running generation's record outlives a crash this long at most (unless settled before). */
const RUNNING_TTL_MS = 24 * 60 * 60 * 1000;
/** Chunks kept per transcript (about: Redis trims whole nodes). */
const STREAM_MAX_CHUNKS = 100_000;
const CONNECT_TIMEOUT_MS = 3000;
const COMMAND_TIMEOUT_MS = 5000;
/** Reconnection waits: 50 ms doubling to this. */
const MAX_RECONNECT_WAIT_MS = 2000;

export type RedisStoreOptions = {
  /** This process's name among the instances sharing the store (unique per process). */
  instanceId: string;
  /** How long the first connection may take before connect() rejects. */
  connectTimeoutMs?: number;
  /** How long one command may take before it fails with StoreUnavailable. */
  commandTimeoutMs?: number;
  /** Liveness TTL of this instance (refreshed every third of it); tests shorten it. */
  instanceTtlMs?: number;
};

type Fields = Record<string, string>;

/**
 * The store for many instances (`--store redis://…`): sessions, transcripts, budgets and tickets in
 * one Redis, every check-then-write a Lua script (atomic across instances). Each instance keeps a
 * liveness key fresh; the running generations of an instance whose key expired are orphans that
 * any instance settles as `interrupted` (settleOrphan). Once connected it reconnects forever;
 * while Redis cannot be reached every call fails at once with StoreUnavailable and
 * unavailableReason() says why.
 *
 * Layout (every key prefixed with `llmchat:`): `s:{id}` session hash and `s:{id}:m` its history
 * (JSON messages), both expiring after the session's TTL; `o:{owner}:s` (session → expiry) and
 * `o:{owner}:c` (session → chars), the owner's index; `g:{genId}` generation hash and
 * `g:{genId}:x` its chunks (a stream); `i:{instanceId}` liveness; `t:{hash}` tickets; `r:{id}` stored responses;
 * `b:{key}` budgets.
 */
export class RedisStore implements Store {
  readonly kind = 'redis';
  readonly budgets: Budgets;
  private readonly instanceTtlMs: number;
  private heartbeat: NodeJS.Timeout | undefined;
  private closing = false;
  /** A second connection, in subscriber mode: other instances' requests to cancel what runs here. */
  private subscriber: Redis | undefined;
  private cancelHandler: ((genId: string) => void) | undefined;
  /** The last connection error, for unavailableReason(). */
  private lastError: string | undefined;
  /** The last failed command (a write of appendChunks, a timeout), until a command succeeds. */
  private commandError: string | undefined;

  private constructor(
    private readonly redis: Redis,
    readonly location: string,
    readonly instanceId: string,
    instanceTtlMs: number,
  ) {
    this.instanceTtlMs = instanceTtlMs;
    this.budgets = new RedisBudgets(instanceId, (script, keys, args) => this.run(script, keys, args));
  }

  /**
   * Connects to `url` and starts this instance's heartbeat. Rejects within about
   * `connectTimeoutMs` with an Error naming the URL (without its password) when Redis cannot be
   * reached, refuses the password, or is older than 6.2; never retries at start.
   */
  static async connect(url: string, options: RedisStoreOptions): Promise<RedisStore> {
    const location = redactUrl(url);
    const connectTimeout = options.connectTimeoutMs ?? CONNECT_TIMEOUT_MS;
    let started = false;
    const redis = new Redis(url, {
      lazyConnect: true,
      connectTimeout,
      commandTimeout: options.commandTimeoutMs ?? COMMAND_TIMEOUT_MS,
      // Fail fast while disconnected: nothing waits in a queue, nothing is sent twice.
      enableOfflineQueue: false,
      maxRetriesPerRequest: 0,
      autoResendUnfulfilledCommands: false,
      enableAutoPipelining: false,
      // No retry until the first connection worked; then forever, with capped backoff.
      retryStrategy: (times) => (started ? Math.min(50 * 2 ** Math.min(times, 10), MAX_RECONNECT_WAIT_MS) : null),
      reconnectOnError: () => false,
    });
    let firstError: NodeJS.ErrnoException | undefined;
    const onFirstError = (error: Error) => {
      firstError ??= error;
    };
    redis.on('error', onFirstError);
    const fail = (why: string): Error => {
      redis.on('error', () => {});
      redis.disconnect();
      return new StoreOpenError(`Cannot connect to the store: redis at ${location} ${why}`);
    };
    try {
      await withTimeout(redis.connect(), connectTimeout + 1000, 'connect timed out');
      const info = String(await redis.info('server'));
      const version = /redis_version:(\d+)\.(\d+)/.exec(info);
      if (version !== null && (Number(version[1]) < 6 || (Number(version[1]) === 6 && Number(version[2]) < 2))) {
        throw fail(`is version ${version[1]}.${version[2]}: RedisStore needs Redis 6.2 or newer`);
      }
    } catch (error) {
      if (error instanceof Error && error.message.startsWith('Cannot connect')) throw error;
      const cause: NodeJS.ErrnoException = firstError ?? (error as Error);
      // A system error (ECONNREFUSED, ETIMEDOUT, ENOTFOUND…) or no answer: nothing answered; otherwise Redis refused.
      const unreachable =
        cause.syscall !== undefined ||
        cause.code === 'ETIMEDOUT' ||
        (firstError === undefined && cause.name !== 'ReplyError');
      throw fail(`${unreachable ? 'unreachable' : 'refused the connection'}: ${cause.message}`);
    } finally {
      redis.off('error', onFirstError);
    }
    started = true;
    const store = new RedisStore(redis, location, options.instanceId, options.instanceTtlMs ?? INSTANCE_TTL_MS);
    store.watch();
    try {
      await store.beat();
    } catch (error) {
      await store.close();
      throw fail(`refused a write: ${(error as Error).message}`);
    }
    store.listenForCancels(redis);
    store.heartbeat = setInterval(
      () => {
        store.beat().catch(() => {});
      },
      Math.max(100, Math.floor(store.instanceTtlMs / 3)),
    ).unref();
    return store;
  }

  unavailableReason(): string | undefined {
    if (this.closing) return `redis at ${this.location} closed`;
    if (!this.connected) return `redis at ${this.location} unreachable: ${this.lastError ?? 'connection lost'}`;
    return this.commandError;
  }

  async createSession(session: NewSession, bounds: OwnerBounds): Promise<OwnerRefusal | undefined> {
    const chars = session.system?.length ?? 0;
    const system =
      session.system === undefined || session.system === ''
        ? ''
        : JSON.stringify({ role: 'system', content: session.system } satisfies StoredMessage);
    const reply = (await this.run(
      CREATE_SESSION,
      [...sessionKeys(session.id), ...ownerKeys(session.ownerKey)],
      [
        session.id,
        session.ownerKey,
        session.resumeTokenHash,
        system,
        chars,
        ms(session.ttlMs),
        bounds.maxSessionsPerKey,
        bounds.maxCharsPerKey,
      ],
    )) as [string, number?, number?];
    const [outcome, sessions = 0, owned = 0] = reply;
    if (outcome === 'ok') return undefined;
    return { limit: outcome as OwnerRefusal['limit'], usage: { sessions: Number(sessions), chars: Number(owned) } };
  }

  async loadSession(sessionId: string): Promise<StoredSession | undefined> {
    const reply = (await this.run(LOAD_SESSION, sessionKeys(sessionId), [KEY_PREFIX, sessionId])) as
      | [string[], string[]]
      | null;
    if (reply === null) return undefined;
    const [flat, messages] = reply;
    const fields = pairs(flat);
    return {
      id: sessionId,
      ownerKey: fields.owner ?? '',
      resumeTokenHash: fields.resumeTokenHash ?? '',
      messages: messages.map((json) => JSON.parse(json) as StoredMessage),
      chars: Number(fields.chars ?? 0),
      activeGenId: fields.activeGenId === undefined || fields.activeGenId === '' ? undefined : fields.activeGenId,
    };
  }

  async deleteSession(sessionId: string): Promise<void> {
    await this.run(DELETE_SESSION, sessionKeys(sessionId), [KEY_PREFIX, sessionId]);
  }

  async ownerUsage(ownerKey: string): Promise<OwnerUsage> {
    const [sessions, chars] = (await this.run(OWNER_USAGE, ownerKeys(ownerKey), [])) as [number, number];
    return { sessions: Number(sessions), chars: Number(chars) };
  }

  async beginTurn(turn: NewTurn): Promise<BeginTurnResult> {
    const [outcome, activeGenId] = (await this.run(
      BEGIN_TURN,
      [...sessionKeys(turn.sessionId), ...generationKeys(turn.genId)],
      [
        KEY_PREFIX,
        turn.genId,
        turn.sessionId,
        turn.ownerKey,
        this.instanceId,
        JSON.stringify(turn.user),
        ms(turn.transcriptTtlMs),
        RUNNING_TTL_MS,
      ],
    )) as [string, string?];
    if (outcome === 'ok') return { ok: true };
    if (outcome === 'busy') return { ok: false, reason: 'busy', activeGenId: activeGenId ?? '' };
    return { ok: false, reason: 'not_found' };
  }

  /**
   * Each chunk is an XADD written to the socket before this returns (no offline queue, no
   * auto-pipelining): it reaches Redis before the frames reach clients. A failure is kept for
   * unavailableReason() until a command succeeds.
   */
  appendChunks(genId: string, chunks: readonly StoredChunk[]): void {
    const stream = generationKeys(genId)[1];
    for (const chunk of chunks) {
      this.redis
        .call(
          'XADD',
          stream,
          'NOMKSTREAM',
          'MAXLEN',
          '~',
          STREAM_MAX_CHUNKS,
          '*',
          'seq',
          chunk.seq,
          'text',
          chunk.text,
          'channel',
          chunk.channel,
        )
        .catch((error: unknown) => {
          this.commandError = this.describe(error);
        });
    }
  }

  async endTurn(end: TurnEnd): Promise<void> {
    const turn = end.turn === undefined || isEmptyTurn(end.turn) ? undefined : end.turn;
    await this.finish(end.sessionId, end.genId, end.outcome, turn);
  }

  async loadGeneration(genId: string): Promise<StoredGeneration | undefined> {
    const generation = await this.readGeneration(genId);
    return generation === undefined ? undefined : publicGeneration(generation);
  }

  async settleOrphan(genId: string): Promise<StoredGeneration | undefined> {
    for (let attempt = 0; attempt < 5; attempt += 1) {
      const generation = await this.readGeneration(genId);
      if (generation === undefined || generation.status !== 'running') {
        return generation === undefined ? undefined : publicGeneration(generation);
      }
      const answer = contentOf(generation.chunks);
      const result = await this.finish(
        generation.sessionId,
        genId,
        interruptedOutcome(generation.chunks),
        answer === '' ? undefined : { user: generation.user, answer },
        { instanceId: generation.instanceId, lastChunkId: generation.lastChunkId },
      );
      // 'moved': a chunk came in between (its instance is alive after all): look again.
      if (result !== 'moved') return this.loadGeneration(genId);
    }
    return this.loadGeneration(genId);
  }

  async saveResponse(response: StoredResponse, ttlMs: number): Promise<void> {
    const value = JSON.stringify({ ownerKey: response.ownerKey, body: response.body });
    await this.command(() => this.redis.set(key('r', response.id), value, 'PX', ms(ttlMs)));
  }

  async loadResponse(responseId: string): Promise<StoredResponse | undefined> {
    const value = await this.command(() => this.redis.get(key('r', responseId)));
    if (value === null) return undefined;
    const { ownerKey, body } = JSON.parse(value) as { ownerKey: string; body: string };
    return { id: responseId, ownerKey, body };
  }

  async issueTicket(ticketHash: string, keyName: string, ttlMs: number): Promise<void> {
    if (ttlMs <= 0) return;
    await this.command(() => this.redis.set(key('t', ticketHash), keyName, 'PX', ms(ttlMs)));
  }

  async redeemTicket(ticketHash: string): Promise<string | undefined> {
    const keyName = await this.command(() => this.redis.getdel(key('t', ticketHash)));
    return keyName ?? undefined;
  }

  async requestCancel(genId: string): Promise<boolean> {
    const instanceId = await this.command(() => this.redis.hget(key('g', genId), 'instanceId'));
    if (instanceId === null || instanceId === this.instanceId) return false;
    const receivers = await this.command(() => this.redis.publish(cancelChannel(instanceId), genId));
    return receivers > 0;
  }

  onCancelRequest(handler: (genId: string) => void): void {
    this.cancelHandler = handler;
  }

  /** Stops the heartbeat and quits once the commands already sent are answered. */
  async close(): Promise<void> {
    if (this.closing) return;
    this.closing = true;
    clearInterval(this.heartbeat);
    this.subscriber?.disconnect();
    if (this.redis.status === 'ready') {
      try {
        await withTimeout(this.redis.quit(), 2000, 'quit timed out');
        return;
      } catch {}
    }
    this.redis.disconnect();
  }

  /** Runs a script; any failure becomes StoreUnavailable. */
  private async run(script: LuaScript, keys: readonly string[], args: readonly (string | number)[]): Promise<unknown> {
    return this.command(async () => {
      try {
        return await this.redis.evalsha(script.sha, keys.length, ...keys, ...args);
      } catch (error) {
        // Redis restarted (or flushed its scripts): send the script itself, which caches it again.
        if (!(error instanceof Error) || !error.message.startsWith('NOSCRIPT')) throw error;
        return await this.redis.eval(script.lua, keys.length, ...keys, ...args);
      }
    });
  }

  /** Commands are sent only while ready (the status changes before queued commands are failed). */
  private get connected(): boolean {
    return this.redis.status === 'ready';
  }

  private async command<T>(send: () => Promise<T>): Promise<T> {
    try {
      const result = await send();
      this.commandError = undefined;
      return result;
    } catch (error) {
      const reason = this.describe(error);
      if (this.connected) this.commandError = reason;
      throw new StoreUnavailable(reason, { cause: error });
    }
  }

  private describe(error: unknown): string {
    if (!this.connected || this.closing) return this.unavailableReason() ?? `redis at ${this.location} unreachable`;
    return `redis at ${this.location} failed: ${error instanceof Error ? error.message : String(error)}`;
  }

  private async finish(
    sessionId: string,
    genId: string,
    outcome: StoredOutcome,
    turn: TurnEnd['turn'],
    orphan?: { instanceId: string; lastChunkId: string },
  ): Promise<string> {
    const answer = turn === undefined ? undefined : answerMessage(turn.answer, outcome.finish, turn.toolCalls);
    const chars = turn === undefined ? 0 : turn.user.content.length + turn.answer.length;
    const args: (string | number)[] = [
      KEY_PREFIX,
      sessionId,
      genId,
      JSON.stringify(outcome),
      turn === undefined ? '' : JSON.stringify(turn.user),
      answer === undefined ? '' : JSON.stringify(answer),
      chars,
    ];
    if (orphan !== undefined) args.push(orphan.instanceId, orphan.lastChunkId);
    return String(await this.run(FINISH_TURN, [...sessionKeys(sessionId), ...generationKeys(genId)], args));
  }

  private async readGeneration(genId: string): Promise<RawGeneration | undefined> {
    const [hashKey, streamKey] = generationKeys(genId);
    const replies = await this.command(() => this.redis.multi().hgetall(hashKey).xrange(streamKey, '-', '+').exec());
    const [hashReply, streamReply] = replies ?? [];
    if (hashReply?.[0] || streamReply?.[0]) {
      throw new StoreUnavailable(this.describe(hashReply?.[0] ?? streamReply?.[0]));
    }
    const fields = (hashReply?.[1] ?? {}) as Fields;
    if (fields.status === undefined) return undefined;
    const entries = (streamReply?.[1] ?? []) as [string, string[]][];
    const chunks: StoredChunk[] = [];
    for (const [, flat] of entries) {
      const chunk = pairs(flat);
      if (chunk.text === undefined) continue;
      chunks.push({ seq: Number(chunk.seq), text: chunk.text, channel: chunk.channel as StoredChunk['channel'] });
    }
    return {
      id: genId,
      sessionId: fields.sessionId ?? '',
      ownerKey: fields.owner ?? '',
      instanceId: fields.instanceId ?? '',
      status: fields.status,
      user: JSON.parse(fields.user ?? '{"role":"user","content":""}') as StoredMessage,
      chunks,
      outcome: fields.outcome === undefined ? undefined : (JSON.parse(fields.outcome) as StoredOutcome),
      lastChunkId: entries.at(-1)?.[0] ?? '',
    };
  }

  /** Subscribes to this instance's cancel channel (resubscribed by ioredis after a reconnect). */
  private listenForCancels(redis: Redis): void {
    const subscriber = redis.duplicate({ enableOfflineQueue: true, commandTimeout: undefined });
    subscriber.on('error', () => {});
    subscriber.on('message', (_channel: string, genId: string) => this.cancelHandler?.(genId));
    subscriber.subscribe(cancelChannel(this.instanceId)).catch(() => {});
    this.subscriber = subscriber;
  }

  /** Refreshes this instance's liveness key. */
  private async beat(): Promise<void> {
    await this.command(() => this.redis.set(key('i', this.instanceId), '1', 'PX', this.instanceTtlMs));
  }

  private watch(): void {
    this.redis.on('error', (error: Error) => {
      this.lastError = error.message;
    });
    this.redis.on('ready', () => {
      this.lastError = undefined;
      this.commandError = undefined;
      if (!this.closing) this.beat().catch(() => {});
    });
  }
}

type RawGeneration = StoredGeneration & {
  instanceId: string;
  status: string;
  user: StoredMessage;
  lastChunkId: string;
};

const BUCKETS: readonly BucketName[] = ['requests', 'tokens', 'resumes'];

/** Budgets in Redis: one hash per key, refilled and taken from in one script (see scripts.ts). */
class RedisBudgets implements Budgets {
  constructor(
    private readonly instanceId: string,
    private readonly run: (script: LuaScript, keys: string[], args: (string | number)[]) => Promise<unknown>,
  ) {}

  async take(budgetKey: string, request: BudgetRequest, now = Date.now()): Promise<BudgetDenial | undefined> {
    const args: (string | number)[] = [
      KEY_PREFIX,
      this.instanceId,
      now,
      request.concurrent ? '1' : '0',
      request.limits.concurrent,
    ];
    for (const name of BUCKETS) args.push(request.limits[name], Math.max(0, request.take[name] ?? 0));
    const reply = (await this.run(BUDGET_TAKE, [key('b', budgetKey)], args)) as [] | [string, number];
    if (reply.length === 0) return undefined;
    const [dimension, retryAfterMs] = reply;
    return { dimension: dimension as BudgetDenial['dimension'], retryAfterMs: Number(retryAfterMs) };
  }

  async settle(budgetKey: string, settlement: { concurrent: boolean; tokens: number }, now = Date.now()) {
    await this.run(
      BUDGET_SETTLE,
      [key('b', budgetKey)],
      [KEY_PREFIX, this.instanceId, now, settlement.concurrent ? '1' : '0', settlement.tokens],
    );
  }

  async peek(budgetKey: string, limits: BudgetLimits, now = Date.now()): Promise<BudgetLevels> {
    const reply = (await this.run(
      BUDGET_PEEK,
      [key('b', budgetKey)],
      [KEY_PREFIX, now, ...BUCKETS.map((name) => limits[name])],
    )) as (string | number)[];
    const level = (index: number) => ({ remaining: Number(reply[index * 2]), resetMs: Number(reply[index * 2 + 1]) });
    return { requests: level(0), tokens: level(1), resumes: level(2), concurrent: Number(reply[6]) };
  }
}

function key(kind: string, id: string): string {
  return `${KEY_PREFIX}${kind}:${id}`;
}

function sessionKeys(sessionId: string): [string, string] {
  const hash = key('s', sessionId);
  return [hash, `${hash}:m`];
}

function ownerKeys(ownerKey: string): [string, string] {
  const base = key('o', ownerKey);
  return [`${base}:s`, `${base}:c`];
}

function generationKeys(genId: string): [string, string] {
  const hash = key('g', genId);
  return [hash, `${hash}:x`];
}

/** A whole number of milliseconds, at least 1 (Redis refuses an expiry of 0). */
function ms(value: number): number {
  return Math.max(1, Math.ceil(value));
}

function pairs(flat: readonly string[]): Fields {
  const fields: Fields = {};
  for (let index = 0; index + 1 < flat.length; index += 2) fields[flat[index] as string] = flat[index + 1] as string;
  return fields;
}

function publicGeneration({ id, sessionId, ownerKey, chunks, outcome }: RawGeneration): StoredGeneration {
  return { id, sessionId, ownerKey, chunks, outcome };
}

/** The URL without its password, for logs and errors. */
/** Where other instances ask this one to cancel a generation it runs. */
function cancelChannel(instanceId: string): string {
  return `${KEY_PREFIX}cancel:${instanceId}`;
}

export function redactUrl(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password !== '') parsed.password = '';
    return parsed.toString();
  } catch {
    return url.replace(/\/\/[^@/]*@/, '//');
  }
}

async function withTimeout<T>(promise: Promise<T>, timeoutMs: number, message: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      promise,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(message)), timeoutMs);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}
