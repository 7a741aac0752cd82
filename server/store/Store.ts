import type { Channel, ErrorCode, FinishReason } from '../../protocol/index.js';

/**
 * What outlives the process: sessions and their history, the transcript of each generation (for
 * resume, here or on another instance), and what instances must share (rate-limit budgets,
 * single-use tickets). Three implementations: MemoryStore (one process, nothing kept), SqliteStore
 * (the embedded default: one instance, kept across restarts) and RedisStore (many instances).
 *
 * The in-process objects (Session, Generation) stay the working copies; the store is written
 * through at the points that matter (a session opened, a turn begun, each chunk, a turn ended) and
 * read when a session or generation is not in this process. Every method may reject with
 * StoreUnavailable; callers refuse the request with the retryable `store_unavailable`.
 */
export interface Store {
  readonly kind: 'memory' | 'sqlite' | 'redis';
  /** A name for logs and errors: the file or URL (without password). */
  readonly location: string;
  /** Why the store cannot serve now (for /readyz), or undefined when it can. */
  unavailableReason(): string | undefined;

  /** Creates a session, counting it against its owner's bounds atomically. */
  createSession(session: NewSession, bounds: OwnerBounds): Promise<OwnerRefusal | undefined>;
  /** The session with its whole history, extending its expiry; undefined when unknown or expired. */
  loadSession(sessionId: string): Promise<StoredSession | undefined>;
  /** Deletes a session and its history, giving its owner's budget back. */
  deleteSession(sessionId: string): Promise<void>;
  /** Sessions and characters the owner keeps now (expired ones not counted). */
  ownerUsage(ownerKey: string): Promise<OwnerUsage>;

  /**
   * Starts a turn: marks the session busy with `turn.genId` (atomically: only if it is not busy
   * already) and records a running generation owned by this instance, holding the user's message.
   */
  beginTurn(turn: NewTurn): Promise<BeginTurnResult>;
  /**
   * Appends streamed chunks to the generation's transcript, in order. Does not wait: the write
   * is issued before the frames go to clients; failures surface through unavailableReason().
   */
  appendChunks(genId: string, chunks: readonly StoredChunk[]): void;
  /**
   * Ends a turn in one transaction: the generation's outcome, the user message and answer added
   * to the history (none when the answer is empty), the session's and owner's characters, and the
   * session no longer busy. A session deleted meanwhile only gets the generation's outcome.
   */
  endTurn(end: TurnEnd): Promise<void>;
  /** The generation's transcript and outcome (undefined while running). */
  loadGeneration(genId: string): Promise<StoredGeneration | undefined>;
  /**
   * Ends a generation whose instance is gone (crashed, killed) as `interrupted`, keeping its
   * partial answer in the history like a finished turn; returns the generation as it now stands.
   * A generation that is still running on a live instance, or already done, is returned as is.
   */
  settleOrphan(genId: string): Promise<StoredGeneration | undefined>;

  /**
   * Asks the instance running `genId` to cancel it (a client connected elsewhere pressed Stop);
   * false when no other live instance took the request (one process: always false).
   */
  requestCancel(genId: string): Promise<boolean>;
  /** Called with each generation another instance asks this one to cancel. */
  onCancelRequest(handler: (genId: string) => void): void;

  /** Takes from per-key budgets atomically across instances (see Budgets). */
  readonly budgets: Budgets;

  /** Stores a ticket (by hash) for `keyName`, expiring after `ttlMs`. */
  issueTicket(ticketHash: string, keyName: string, ttlMs: number): Promise<void>;
  /** The key name of a ticket, once: deleted atomically as it is read; undefined if unknown or expired. */
  redeemTicket(ticketHash: string): Promise<string | undefined>;

  /**
   * Keeps a response of the Responses API (its whole conversation, as the caller's JSON) for
   * `ttlMs`, so that a later request may continue it (`previous_response_id`) or refer to one of its
   * items (`item_reference`) on any instance.
   */
  saveResponse(response: StoredResponse, ttlMs: number): Promise<void>;
  /** A stored response; undefined when unknown or expired. */
  loadResponse(responseId: string): Promise<StoredResponse | undefined>;
  /** Stops timers and closes connections; pending writes are flushed first. */
  close(): Promise<void>;
}

/** A response of the Responses API: the store keeps its body as is (see server/http/openai/responses). */
export type StoredResponse = { id: string; ownerKey: string; body: string };

/** A message of the history; an answer that did not end with `stop` says how it ended. */
export type StoredMessage = {
  role: 'system' | 'user' | 'assistant' | 'tool';
  content: string;
  finish?: FinishReason;
  /** On an answer that called tools: the calls (entries stored before tools have none). */
  toolCalls?: readonly StoredToolCall[];
  /**
   * On a 'tool' message, the results of one turn's calls: `content` is their texts one after the
   * other, `chars` says where each ends (so the history's characters count them once).
   */
  toolResults?: readonly { callId: string; chars: number }[];
};

export type StoredToolCall = { id: string; name: string; arguments: string };

export type NewSession = {
  id: string;
  ownerKey: string;
  /** sha256 of the resume token, hex. */
  resumeTokenHash: string;
  system: string | undefined;
  /** Unused sessions are forgotten after this long. */
  ttlMs: number;
};

export type StoredSession = {
  id: string;
  ownerKey: string;
  resumeTokenHash: string;
  /** The system prompt first (if any), then user and assistant turns. */
  messages: StoredMessage[];
  /** Characters of all its messages. */
  chars: number;
  /** The generation running (or left running by a dead instance), if any. */
  activeGenId: string | undefined;
};

export type OwnerBounds = { maxSessionsPerKey: number; maxCharsPerKey: number };
export type OwnerUsage = { sessions: number; chars: number };
export type OwnerRefusal = { limit: 'sessions' | 'chars'; usage: OwnerUsage };

export type NewTurn = {
  sessionId: string;
  genId: string;
  ownerKey: string;
  user: StoredMessage;
  /** How long the transcript is kept after the generation ends (the resume window). */
  transcriptTtlMs: number;
};

export type BeginTurnResult =
  | { ok: true }
  | { ok: false; reason: 'not_found' }
  | { ok: false; reason: 'busy'; activeGenId: string };

export type StoredChunk = { seq: number; text: string; channel: Channel };

export type StoredOutcome = {
  finish: FinishReason;
  usage: { promptTokens: number; completionTokens: number; cachedPromptTokens: number };
  timings: { queuedMs: number; ttftMs: number | null; totalMs: number };
  error?: { code: ErrorCode; message: string };
};

export type TurnEnd = {
  sessionId: string;
  genId: string;
  outcome: StoredOutcome;
  /**
   * The user's message (or the tool results) and the answer to add to the history, with the
   * answer's tool calls; undefined, or an empty answer without calls, adds nothing.
   */
  turn: { user: StoredMessage; answer: string; toolCalls?: readonly StoredToolCall[] } | undefined;
};

export type StoredGeneration = {
  id: string;
  sessionId: string;
  ownerKey: string;
  chunks: StoredChunk[];
  /** Undefined while it runs. */
  outcome: StoredOutcome | undefined;
};

/**
 * Per-key budgets shared by every instance on the store: token buckets that refill per minute
 * (requests, tokens, resumes) and a count of generations at once. `take` is all or nothing.
 */
export interface Budgets {
  /**
   * Takes `amounts` from the key's buckets and one `concurrent` slot (when `concurrent` is set)
   * if all have room; otherwise takes nothing and says which refused and how long to wait.
   */
  take(key: string, request: BudgetRequest, now?: number): Promise<BudgetDenial | undefined>;
  /** Gives back a concurrent slot and settles tokens: `tokens` > 0 charges more, < 0 refunds. */
  settle(key: string, settlement: { concurrent: boolean; tokens: number }, now?: number): Promise<void>;
  /** The level of each bucket and the concurrent count, for the `rate_limits` frame. */
  peek(key: string, limits: BudgetLimits, now?: number): Promise<BudgetLevels>;
  /** Drops a key that will not come back (an open-mode connection that closed); optional. */
  forget?(key: string): void;
}

export type BucketName = 'requests' | 'tokens' | 'resumes';
export type BudgetLimits = Record<BucketName, number> & { concurrent: number };
export type BudgetRequest = {
  /** Per-minute capacity of each bucket taken from (also its refill per minute). */
  limits: BudgetLimits;
  take: Partial<Record<BucketName, number>>;
  concurrent: boolean;
};
export type BudgetDenial = { dimension: BucketName | 'concurrent'; retryAfterMs: number };
export type BudgetLevels = Record<BucketName, { remaining: number; resetMs: number }> & { concurrent: number };

/** The store cannot be reached or refused the write; the request may be retried. */
export class StoreUnavailable extends Error {
  override name = 'StoreUnavailable';
}

/** Hands out the finish of a generation whose instance is gone. */
export const INTERRUPTED_MESSAGE = 'The server running this answer stopped before it finished';

/** The store cannot be used at start: unreachable, corrupt, written by a newer version, or held by another process. */
export class StoreOpenError extends Error {
  override name = 'StoreOpenError';
}
