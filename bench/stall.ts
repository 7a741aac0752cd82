import { type ChildProcess, fork } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { setTimeout as delay } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import WebSocket from 'ws';
import { ChatClient } from '../client/ChatClient.js';
import { ClientError } from '../client/ClientError.js';
import { nodeSockets } from '../client/node.js';
import { PROTOCOL_VERSION } from '../protocol/index.js';
import { measureOf, type Percentiles, percentilesOf, StreamClock } from '../tooling/latency.js';
import { benchFlags } from './benchFlags.js';

/**
 * npm run bench:stall -- [--json FILE] [--quiet-s 5] [--attack-s 9] [--only long-history,empty-parts,resume-flood]
 *   [--history-turns 300] [--prep-s 120] [--resume-burst 300] [--resume-max-tokens 1000] [--body-kb 730]
 *   [--http-parallel 3] [--timeout-s N] [--server-args "--flag value …"]
 *
 * How much one abusive client stalls a bystander. The server runs as a child process (as
 * `npm start` runs it); each attacker runs in a child process of its own, so that the work of
 * attacking (parsing replayed frames, uploading bodies) does not delay the measuring event loop.
 * For each window (a quiet baseline, then each attack) two bystander connections, each a ChatClient
 * (client/: a well-behaved client, as users run it), measure:
 *  - chat: one connection chatting in a loop (its own session, a new one every 8 turns so its own
 *    history stays short; maxTokens 48, temperature 0): time to first token and the gaps between
 *    tokens, by StreamClock (tooling/latency.ts);
 *  - ping: a second connection sending `ping` every 20 ms: the round trip to its `pong`.
 * The attackers stay on raw sockets (Wire), since what they send is what a client must not.
 * Everything the server refuses (error frames, HTTP errors, closes) is counted by code, never
 * fatal: a future server may add limits, and then the refusals are the result.
 */

const ATTACKS = ['long-history', 'empty-parts', 'resume-flood'] as const;
type AttackName = (typeof ATTACKS)[number];
type WindowName = 'quiet' | AttackName;
const LABELS: Record<WindowName, string> = {
  quiet: 'quiet',
  'long-history': 'long history',
  'empty-parts': 'empty parts body',
  'resume-flood': 'resume flood',
};

const SERVER_ARGS = [
  '--max-bad-frames',
  '1000000',
  '--requests-per-minute',
  '100000',
  '--tokens-per-minute',
  '100000000',
  '--max-tokens',
  '4096',
  '--shutdown-grace-ms',
  '1000',
];
/** The bystander's prompt, and the long-history attacker's (see prepareLongHistory). */
const PROMPT = 'Once upon a time';
const BYSTANDER_PARAMS = { maxTokens: 48, temperature: 0 };
const BYSTANDER_TURNS_PER_SESSION = 8;
const PING_EVERY_MS = 20;
/** Refusals in a row after which an attacker's preparation stops trying. */
const MAX_REFUSED_IN_A_ROW = 20;

type Counts = Record<string, number>;

type Options = {
  json: string | undefined;
  quietMs: number;
  attackMs: number;
  only: AttackName[];
  historyTurns: number;
  prepMs: number;
  resumeBurst: number;
  resumeMaxTokens: number;
  bodyBytes: number;
  httpParallel: number;
  timeoutMs: number;
  /** Extra server flags, after (and so winning over) SERVER_ARGS. */
  serverArgs: string[];
};

/** What the attacker process is told: its attack, where the server is, and the options it uses. */
type AttackerConfig = { attack: AttackName; wsUrl: string; httpUrl: string } & Pick<
  Options,
  'historyTurns' | 'prepMs' | 'resumeBurst' | 'resumeMaxTokens' | 'bodyBytes' | 'httpParallel'
>;

type AttackerResult = {
  requestsDone: number;
  refusals: Counts;
  prepRefusals: Counts;
  notes: Record<string, number | string>;
};

type ChildMessage =
  | { kind: 'prepared'; notes: Record<string, number | string>; prepRefusals: Counts }
  | { kind: 'result'; result: AttackerResult }
  | { kind: 'failed'; error: string };
type ParentMessage = { kind: 'go'; windowMs: number };

/** The fields of server frames this script reads; parsed loosely so that a newer server's frames never break it. */
type Frame = {
  type: string;
  id?: string;
  genId?: string;
  seq?: number;
  code?: string;
  retryAfterMs?: number;
  sessionId?: string;
  resumeToken?: string;
  finish?: string;
  error?: { code?: string };
  history?: unknown[];
  usage?: { completionTokens?: number };
};

type Row = {
  attack: WindowName;
  label: string;
  windowMs: number;
  bystander: {
    /** Inter-token gaps (StreamClock's rule), within the window. */
    gapMs: Percentiles;
    /** Time to first token, from chat.send. */
    ttftMs: Percentiles;
    /** Ping round trips (a lost ping counts with the time waited for it). */
    pingMs: Percentiles;
    /** Tokens received within the window. */
    tokens: number;
    turns: number;
    pingsLost: number;
    errors: Counts;
  };
  attacker?: AttackerResult;
  serverCpuMs?: number;
  error?: string;
};

const count = (counts: Counts, key: string, by = 1): void => {
  counts[key] = (counts[key] ?? 0) + by;
};

const errorText = (error: unknown): string => (error instanceof Error ? error.message : String(error));

// ---------------------------------------------------------------------------------------------
// The attackers' lean WebSocket client: raw frames, one JSON.parse per frame (none for frames a
// `skip` filter takes).

type Outcome = Frame | 'timeout' | 'closed';

class Wire {
  onFrame: ((frame: Frame) => void) | undefined;
  /** Sees each raw message first; returning true skips parsing it (cheap discarding of floods). */
  skip: ((raw: string) => boolean) | undefined;
  closeCode: number | undefined;
  lastActivity = performance.now();
  private onClose: (() => void) | undefined;

  private constructor(private readonly socket: WebSocket) {
    socket.on('message', (data: Buffer) => {
      this.lastActivity = performance.now();
      const raw = data.toString();
      if (this.skip?.(raw)) return;
      let frame: Frame;
      try {
        frame = JSON.parse(raw) as Frame;
      } catch {
        return;
      }
      this.onFrame?.(frame);
    });
    socket.on('close', (code: number) => {
      this.closeCode = code;
      this.onClose?.();
    });
    // 'close' follows every error.
    socket.on('error', () => {});
  }

  /** Connects and waits for `welcome`; rejects when the upgrade is refused or nothing comes. */
  static connect(url: string, timeoutMs = 10_000): Promise<Wire> {
    return new Promise((resolve, reject) => {
      const socket = new WebSocket(url, [PROTOCOL_VERSION]);
      const wire = new Wire(socket);
      let status = '';
      socket.on('unexpected-response', (_request, response) => {
        status = ` (HTTP ${response.statusCode})`;
        socket.terminate();
      });
      const timer = setTimeout(() => {
        socket.terminate();
        reject(new Error(`no welcome within ${timeoutMs} ms`));
      }, timeoutMs);
      wire.onFrame = (frame) => {
        if (frame.type !== 'welcome') return;
        clearTimeout(timer);
        wire.onFrame = undefined;
        wire.onClose = undefined;
        resolve(wire);
      };
      wire.onClose = () => {
        clearTimeout(timer);
        reject(new Error(`connection refused or closed before welcome: ${wire.closeCode}${status}`));
      };
    });
  }

  get isOpen(): boolean {
    return this.closeCode === undefined && this.socket.readyState === WebSocket.OPEN;
  }

  /**
   * Sends `frames`, then resolves with the first frame `until` accepts (`onFrame` sees every
   * parsed frame), 'closed', or 'timeout' after `idleMs` without any message.
   */
  request(
    frames: readonly object[],
    until: (frame: Frame) => boolean,
    idleMs: number,
    onFrame: (frame: Frame) => void = () => {},
  ): Promise<Outcome> {
    return new Promise((resolve) => {
      if (!this.isOpen) {
        resolve('closed');
        return;
      }
      this.lastActivity = performance.now();
      const finish = (outcome: Outcome) => {
        clearInterval(timer);
        this.onFrame = undefined;
        this.onClose = undefined;
        resolve(outcome);
      };
      const timer = setInterval(
        () => {
          if (performance.now() - this.lastActivity > idleMs) finish('timeout');
        },
        Math.min(250, idleMs),
      );
      this.onFrame = (frame) => {
        onFrame(frame);
        if (until(frame)) finish(frame);
      };
      this.onClose = () => finish('closed');
      for (const frame of frames) this.socket.send(JSON.stringify(frame));
    });
  }

  close(): void {
    this.onFrame = undefined;
    this.onClose = undefined;
    if (this.socket.readyState === WebSocket.CONNECTING) this.socket.terminate();
    else this.socket.close();
  }
}

/** How long a request may go without any reply: 20 s, less near the end of a window (at least 1 s). */
function idleBefore(endAt: number): number {
  return Math.round(Math.max(1_000, Math.min(20_000, endAt + 10_000 - performance.now())));
}

/** How long to wait after a refusal: what the server asked (at most a second), at least 10 ms. */
function pauseAfter(refusal: { retryAfterMs?: number | undefined } | undefined): number {
  return Math.round(Math.min(1000, Math.max(10, refusal?.retryAfterMs ?? 0)));
}

/** Opens a session (or reattaches one); returns the opened frame or the refusal. */
async function openSession(wire: Wire, reattach?: { sessionId: string; resumeToken: string }): Promise<Outcome> {
  const id = `open-${Math.random().toString(36).slice(2, 10)}`;
  return wire.request(
    [{ type: 'session.open', id, ...reattach }],
    (frame) => (frame.type === 'session.opened' || frame.type === 'error') && frame.id === id,
    10_000,
  );
}

const refusalOf = (outcome: Exclude<Outcome, 'timeout' | 'closed'> | 'timeout' | 'closed', wire: Wire): string => {
  if (outcome === 'timeout') return 'no reply';
  if (outcome === 'closed') return `close ${wire.closeCode ?? '?'}`;
  if (outcome.type === 'error') return outcome.code ?? 'error';
  if (outcome.type === 'generation.done' && outcome.finish === 'error') return `done:${outcome.error?.code ?? 'error'}`;
  return outcome.type;
};

// ---------------------------------------------------------------------------------------------
// Bystanders (in the main process), on the project's client: they behave as a client should.

/** A bystander's connection, and when it last heard anything (for the idle timeouts). */
type Line = { client: ChatClient; lastHeardAt: number };

async function connectLine(url: string, timeoutMs = 10_000): Promise<Line> {
  const connecting = ChatClient.connect(url, { createSocket: nodeSockets() });
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      void connecting.then(
        (late) => late.close(),
        () => {},
      );
      reject(new Error(`no welcome within ${timeoutMs} ms`));
    }, timeoutMs);
  });
  try {
    const client = await Promise.race([connecting, timeout]);
    const line: Line = { client, lastHeardAt: performance.now() };
    client.observe(() => {
      line.lastHeardAt = performance.now();
    });
    return line;
  } finally {
    clearTimeout(timer);
  }
}

/** Why a bystander's request got no answer: the table's name for it, and the pause before the next. */
class Refused {
  constructor(
    readonly name: string,
    readonly pauseMs: number,
  ) {}
}

/**
 * `request`'s value, or why there was none: the error frame's code, `close <code>`, or `no reply`
 * once the connection has heard nothing for `idleMs` (counted from now).
 */
async function settle<T>(line: Line, request: Promise<T>, idleMs: number): Promise<T | Refused> {
  line.lastHeardAt = performance.now();
  let timer: NodeJS.Timeout | undefined;
  const idle = new Promise<Refused>((resolve) => {
    timer = setInterval(
      () => {
        if (performance.now() - line.lastHeardAt > idleMs) resolve(new Refused('no reply', pauseAfter(undefined)));
      },
      Math.min(250, idleMs),
    );
  });
  try {
    return await Promise.race([request, idle]);
  } catch (error) {
    if (!(error instanceof ClientError)) throw error;
    if (error.code === 'connection_closed') return new Refused(`close ${(await line.client.closed).code}`, 10);
    return new Refused(error.code, pauseAfter(error));
  } finally {
    clearInterval(timer);
  }
}

type ChatStats = { clocks: StreamClock[]; turns: number; errors: Counts };

async function chatBystander(line: Line, endAt: number): Promise<ChatStats> {
  const { client } = line;
  const stats: ChatStats = { clocks: [], turns: 0, errors: {} };
  let sessionId: string | undefined;
  let turnsInSession = 0;
  while (performance.now() < endAt && client.isOpen) {
    if (sessionId === undefined || turnsInSession >= BYSTANDER_TURNS_PER_SESSION) {
      if (sessionId !== undefined) await settle(line, client.closeSession(sessionId), 5_000);
      const opened = await settle(line, client.openSession(), 10_000);
      if (opened instanceof Refused) {
        count(stats.errors, `session.open: ${opened.name}`);
        await delay(opened.pauseMs);
        continue;
      }
      sessionId = opened.sessionId;
      turnsInSession = 0;
    }
    const clock = new StreamClock(performance.now());
    stats.clocks.push(clock);
    const generation = client.chat(sessionId, PROMPT, BYSTANDER_PARAMS);
    let abandoned = false;
    const streamed = (async () => {
      let lastSeq = 0;
      for await (const chunk of generation) {
        const now = performance.now();
        // The turn in flight when the window ends runs on: what comes after the window is not counted.
        if (now <= endAt && !abandoned) clock.chunk(chunk.seq - lastSeq, now);
        lastSeq = chunk.seq;
      }
      return generation.done;
    })();
    const outcome = await settle(line, streamed, 30_000);
    abandoned = true;
    turnsInSession += 1;
    if (outcome instanceof Refused) {
      count(stats.errors, outcome.name);
      if (outcome.name === 'no reply') sessionId = undefined;
      await delay(outcome.pauseMs);
    } else if (outcome.finish === 'error') {
      count(stats.errors, `done:${outcome.error?.code ?? 'error'}`);
      await delay(pauseAfter(undefined));
    } else stats.turns += 1;
  }
  if (!client.isOpen) count(stats.errors, `chat connection closed ${(await client.closed).code}`);
  return stats;
}

type PingStats = { rtts: number[]; lost: number; errors: Counts };

async function pingBystander({ client }: Line, endAt: number): Promise<PingStats> {
  const stats: PingStats = { rtts: [], lost: 0, errors: {} };
  /** When each unanswered ping was sent. */
  const inFlight = new Map<number, number>();
  let n = 0;
  await new Promise<void>((resolve) => {
    const timer = setInterval(() => {
      if (performance.now() >= endAt || !client.isOpen) {
        clearInterval(timer);
        resolve();
        return;
      }
      const key = n++;
      inFlight.set(key, performance.now());
      client.ping().then(
        (rtt) => {
          inFlight.delete(key);
          stats.rtts.push(rtt);
        },
        (error: unknown) => {
          // A ping its connection took with it stays in flight: it counts as lost.
          if (error instanceof ClientError && error.code === 'connection_closed') return;
          inFlight.delete(key);
          count(stats.errors, error instanceof ClientError ? error.code : errorText(error));
        },
      );
    }, PING_EVERY_MS);
  });
  // Late pongs still count (a stall shows as a long round trip); unanswered ones count as lost,
  // with the time waited as their round trip.
  const drainUntil = performance.now() + 5_000;
  while (inFlight.size > 0 && client.isOpen && performance.now() < drainUntil) await delay(10);
  const now = performance.now();
  for (const sentAt of inFlight.values()) stats.rtts.push(now - sentAt);
  stats.lost = inFlight.size;
  if (!client.isOpen) count(stats.errors, `ping connection closed ${(await client.closed).code}`);
  return stats;
}

// ---------------------------------------------------------------------------------------------
// Attackers (each in a child process: `stall.ts --attacker <config json>`).

class Tally {
  done = 0;
  refusals: Counts = {};
  refuse(code: string, by = 1): void {
    count(this.refusals, code, by);
  }
}

/** One attacker connection and session, reconnected (and the session reattached) when the server closes it. */
class AttackerSession {
  wire: Wire | undefined;
  sessionId: string | undefined;
  resumeToken: string | undefined;
  reconnects = 0;

  constructor(
    private readonly url: string,
    private tally: Tally,
  ) {}

  countInto(tally: Tally): void {
    this.tally = tally;
  }

  /** A usable connection with the session open on it; false (after a pause) when that failed. */
  async ensure(): Promise<boolean> {
    if (this.wire?.isOpen && this.sessionId !== undefined) return true;
    if (this.wire !== undefined && !this.wire.isOpen) this.reconnects += 1;
    try {
      if (!this.wire?.isOpen) this.wire = await Wire.connect(this.url);
    } catch (error) {
      this.tally.refuse(`connect: ${errorText(error).slice(0, 60)}`);
      await delay(200);
      return false;
    }
    const wire = this.wire;
    if (this.sessionId !== undefined && this.resumeToken !== undefined) {
      const reattached = await openSession(wire, { sessionId: this.sessionId, resumeToken: this.resumeToken });
      if (typeof reattached !== 'string' && reattached.type === 'session.opened') return true;
      this.tally.refuse(`reattach: ${refusalOf(reattached, wire)}`);
      this.sessionId = undefined;
    }
    const opened = await openSession(wire);
    if (typeof opened !== 'string' && opened.type === 'session.opened' && opened.sessionId !== undefined) {
      this.sessionId = opened.sessionId;
      this.resumeToken = opened.resumeToken;
      return true;
    }
    this.tally.refuse(`session.open: ${refusalOf(opened, wire)}`);
    await delay(pauseAfter(typeof opened === 'string' ? undefined : opened));
    return false;
  }

  /** One chat turn; returns the finished generation's id, or undefined when it was refused or failed. */
  async chat(
    id: string,
    params: object,
    idleMs: number,
  ): Promise<{ genId: string; completionTokens: number } | undefined> {
    if (!(await this.ensure()) || this.wire === undefined) return undefined;
    const wire = this.wire;
    let genId: string | undefined;
    const outcome = await wire.request(
      [{ type: 'chat.send', id, sessionId: this.sessionId, content: PROMPT, params }],
      (frame) =>
        (frame.type === 'generation.done' && frame.genId === genId) || (frame.type === 'error' && frame.id === id),
      idleMs,
      (frame) => {
        if (frame.type === 'generation.queued' && frame.id === id) genId = frame.genId;
      },
    );
    if (typeof outcome !== 'string' && outcome.type === 'generation.done' && outcome.finish !== 'error' && genId) {
      return { genId, completionTokens: outcome.usage?.completionTokens ?? 0 };
    }
    this.tally.refuse(refusalOf(outcome, wire));
    if (outcome === 'timeout') wire.close();
    if (typeof outcome !== 'string' && outcome.type === 'error' && outcome.code === 'not_found')
      this.sessionId = undefined;
    await delay(pauseAfter(typeof outcome === 'string' ? undefined : outcome));
    return undefined;
  }

  close(): void {
    this.wire?.close();
  }
}

type Attack = {
  /** Before the measured window: returns notes; refusals go to `prep`. */
  prepare(prep: Tally): Promise<Record<string, number | string>>;
  /** The measured window: attack until `endAt`, counting into `tally`. */
  run(tally: Tally, endAt: number): Promise<Record<string, number | string>>;
};

/**
 * A session with many stored turns; each new turn makes the server render and tokenize the
 * whole history again. The prompt is "Once upon a time" because the tiny model answers it with
 * the same one token every turn: once the history outgrows the context and the oldest turns are
 * dropped, the prompt stays the same token sequence shifted by one turn, its KV cache is reused,
 * and building 300 turns takes seconds instead of re-evaluating ~2,000 prompt tokens per turn.
 */
function longHistory(config: AttackerConfig): Attack {
  let session: AttackerSession | undefined;
  return {
    async prepare(prep) {
      session = new AttackerSession(config.wsUrl, prep);
      const startedAt = performance.now();
      const prepEnd = startedAt + config.prepMs;
      let stored = 0;
      // A server that refuses turn after turn (a history bound, say) ends the preparation early.
      let refusedInARow = 0;
      for (let turn = 0; stored < config.historyTurns && performance.now() < prepEnd; turn++) {
        const done = await session.chat(`prep-${turn}`, { maxTokens: 1, temperature: 0 }, idleBefore(prepEnd));
        if (done !== undefined) stored += 1;
        refusedInARow = done === undefined ? refusedInARow + 1 : 0;
        if (refusedInARow >= MAX_REFUSED_IN_A_ROW) break;
      }
      const notes: Record<string, number | string> = {
        turnsStored: stored,
        prepSeconds: Math.round((performance.now() - startedAt) / 100) / 10,
      };
      // What the server kept: reattach the session on a second connection and count its history.
      if (session.sessionId !== undefined && session.resumeToken !== undefined) {
        try {
          const probe = await Wire.connect(config.wsUrl);
          const opened = await openSession(probe, { sessionId: session.sessionId, resumeToken: session.resumeToken });
          notes.historyMessages =
            typeof opened !== 'string' && opened.type === 'session.opened'
              ? (opened.history?.length ?? -1)
              : `reattach refused: ${refusalOf(opened, probe)}`;
          probe.close();
        } catch (error) {
          notes.historyMessages = `probe failed: ${errorText(error)}`;
        }
      }
      return notes;
    },
    async run(tally, endAt) {
      if (session === undefined) throw new Error('not prepared');
      session.countInto(tally);
      let turn = 0;
      while (performance.now() < endAt) {
        const done = await session.chat(`turn-${turn++}`, { maxTokens: 1, temperature: 0 }, idleBefore(endAt));
        if (done !== undefined) tally.done += 1;
      }
      const notes = { turnsSent: turn, reconnects: session.reconnects };
      session.close();
      return notes;
    },
  };
}

/** One user message whose content is many empty text parts (and one "hi"), about `bytes` long. */
function emptyPartsBody(bytes: number): { body: string; parts: number } {
  const head = '{"max_tokens":1,"temperature":0,"messages":[{"role":"user","content":[{"type":"text","text":"hi"}';
  const empty = ',{"type":"text","text":""}';
  const tail = ']}]}';
  const parts = Math.max(0, Math.floor((bytes - head.length - tail.length) / empty.length));
  return { body: head + empty.repeat(parts) + tail, parts: parts + 1 };
}

function emptyParts(config: AttackerConfig): Attack {
  const { body, parts } = emptyPartsBody(config.bodyBytes);
  const url = `${config.httpUrl}/v1/chat/completions`;
  return {
    async prepare() {
      return { bodyBytes: Buffer.byteLength(body), parts, parallel: config.httpParallel };
    },
    async run(tally, endAt) {
      let sent = 0;
      const drainBy = () => endAt + 15_000;
      const worker = async () => {
        while (performance.now() < endAt) {
          sent += 1;
          const timeout = AbortSignal.timeout(Math.round(Math.max(1_000, drainBy() - performance.now())));
          let response: Response;
          try {
            response = await fetch(url, {
              method: 'POST',
              headers: { 'content-type': 'application/json' },
              body,
              signal: timeout,
            });
          } catch (error) {
            const cause = (error as { cause?: { code?: string } }).cause?.code;
            tally.refuse(`http network ${cause ?? (error as Error).name ?? 'error'}`);
            await delay(50);
            continue;
          }
          let text = '';
          try {
            text = await response.text();
          } catch (error) {
            tally.refuse(`http ${response.status} body ${(error as Error).name ?? 'error'}`);
            continue;
          }
          if (response.ok) {
            tally.done += 1;
            continue;
          }
          let code = 'unknown';
          try {
            code = (JSON.parse(text) as { error?: { code?: string } }).error?.code ?? 'unknown';
          } catch {}
          tally.refuse(`http ${response.status} ${code}`);
          const retryAfterS = Number(response.headers.get('retry-after') ?? 0);
          await delay(Math.round(Math.min(1000, Math.max(10, retryAfterS * 1000 || 0))));
        }
      };
      await Promise.all(Array.from({ length: config.httpParallel }, worker));
      return { requestsSent: sent };
    },
  };
}

/**
 * A long finished generation, then bursts of `generation.resume {afterSeq: 0}` for it, each
 * replaying all of its token frames; the replies are read and discarded.
 */
function resumeFlood(config: AttackerConfig): Attack {
  let session: AttackerSession | undefined;
  let genId: string | undefined;
  let gens = 0;
  const generate = async (tally: Tally, endAt: number) => {
    if (session === undefined) return;
    session.countInto(tally);
    const params = { maxTokens: config.resumeMaxTokens, temperature: 0 };
    const done = await session.chat(`gen-${gens++}`, params, idleBefore(endAt));
    genId = done?.genId;
    return done;
  };
  return {
    async prepare(prep) {
      session = new AttackerSession(config.wsUrl, prep);
      const deadline = performance.now() + config.prepMs;
      let done: Awaited<ReturnType<typeof generate>>;
      for (let tries = 0; done === undefined && tries < MAX_REFUSED_IN_A_ROW && performance.now() < deadline; tries++)
        done = await generate(prep, deadline);
      return { completionTokens: done?.completionTokens ?? 0, burst: config.resumeBurst };
    },
    async run(tally, endAt) {
      if (session === undefined) throw new Error('not prepared');
      session.countInto(tally);
      let bursts = 0;
      let replayedFrames = 0;
      let regenerations = 0;
      while (performance.now() < endAt) {
        if (genId === undefined) {
          regenerations += 1;
          await generate(tally, endAt);
          continue;
        }
        if (!(await session.ensure()) || session.wire === undefined) continue;
        const wire = session.wire;
        const prefix = `r${bursts++}-`;
        const target = genId;
        const frames = Array.from({ length: config.resumeBurst }, (_, i) => ({
          type: 'generation.resume',
          id: `${prefix}${i}`,
          genId: target,
          afterSeq: 0,
        }));
        let pending = frames.length;
        let notFound = 0;
        let pause = 0;
        wire.skip = (raw) => {
          if (!raw.startsWith('{"type":"token"')) return false;
          replayedFrames += 1;
          return true;
        };
        const outcome = await wire.request(
          frames,
          () => pending === 0,
          3_000,
          (frame) => {
            if (frame.type === 'token') replayedFrames += 1;
            else if (frame.type === 'generation.done' && frame.genId === target) {
              pending -= 1;
              tally.done += 1;
            } else if (frame.type === 'error' && frame.id?.startsWith(prefix)) {
              pending -= 1;
              tally.refuse(frame.code ?? 'error');
              if (frame.code === 'not_found') notFound += 1;
              pause = Math.max(pause, pauseAfter(frame));
            }
          },
        );
        wire.skip = undefined;
        if (outcome === 'timeout') tally.refuse('no reply', pending);
        if (outcome === 'closed') tally.refuse(`close ${wire.closeCode ?? '?'}`);
        // The generation is gone (expired, or forgotten): make a new one.
        if (notFound === frames.length) genId = undefined;
        if (pause > 0) await delay(pause);
      }
      const notes = { bursts, replayedFrames, regenerations, reconnects: session.reconnects };
      session.close();
      return notes;
    },
  };
}

const ATTACK_IMPLS: Record<AttackName, (config: AttackerConfig) => Attack> = {
  'long-history': longHistory,
  'empty-parts': emptyParts,
  'resume-flood': resumeFlood,
};

async function runAttacker(config: AttackerConfig): Promise<void> {
  const post = (message: ChildMessage) =>
    new Promise<void>((resolve) => {
      if (process.send === undefined) resolve();
      else process.send(message, () => resolve());
    });
  // The parent went away: nothing to report to.
  process.on('disconnect', () => process.exit(0));
  try {
    const attack = ATTACK_IMPLS[config.attack](config);
    const prep = new Tally();
    const prepNotes = await attack.prepare(prep);
    const go = new Promise<ParentMessage>((resolve) => process.once('message', (m) => resolve(m as ParentMessage)));
    await post({ kind: 'prepared', notes: prepNotes, prepRefusals: prep.refusals });
    const { windowMs } = await go;
    const tally = new Tally();
    const runNotes = await attack.run(tally, performance.now() + windowMs);
    await post({
      kind: 'result',
      result: {
        requestsDone: tally.done,
        refusals: tally.refusals,
        prepRefusals: prep.refusals,
        notes: { ...prepNotes, ...runNotes },
      },
    });
  } catch (error) {
    await post({ kind: 'failed', error: errorText(error) });
  }
  process.exit(0);
}

/** The parent's handle on an attacker child process. */
class AttackerProcess {
  private readonly child: ChildProcess;
  private readonly messages: ChildMessage[] = [];
  private waiter: (() => void) | undefined;
  private exited = false;

  constructor(config: AttackerConfig) {
    this.child = fork(fileURLToPath(import.meta.url), ['--attacker', JSON.stringify(config)], {
      execArgv: ['--import', 'tsx'],
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    this.child.on('message', (message) => {
      this.messages.push(message as ChildMessage);
      this.waiter?.();
    });
    this.child.on('exit', () => {
      this.exited = true;
      this.waiter?.();
    });
    this.child.on('error', () => {});
  }

  /** The next message of `kind` (or a 'failed' one) within `timeoutMs`; throws otherwise. */
  async next<K extends ChildMessage['kind']>(kind: K, timeoutMs: number): Promise<Extract<ChildMessage, { kind: K }>> {
    const deadline = performance.now() + timeoutMs;
    for (;;) {
      const message = this.messages.find((m) => m.kind === kind || m.kind === 'failed');
      if (message !== undefined) {
        if (message.kind === 'failed') throw new Error(`attacker failed: ${message.error}`);
        return message as Extract<ChildMessage, { kind: K }>;
      }
      if (this.exited) throw new Error(`attacker exited (code ${this.child.exitCode}) before "${kind}"`);
      const left = deadline - performance.now();
      if (left <= 0) throw new Error(`no "${kind}" from the attacker within ${Math.round(timeoutMs / 1000)} s`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.waiter = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      this.waiter = undefined;
    }
  }

  go(windowMs: number): void {
    const message: ParentMessage = { kind: 'go', windowMs };
    this.child.send(message);
  }

  kill(): void {
    if (!this.exited) this.child.kill('SIGKILL');
  }
}

// ---------------------------------------------------------------------------------------------
// The orchestrator.

function parseOptions(argv: readonly string[]): Options {
  const flags = benchFlags(argv, {
    json: '',
    quietS: 5,
    attackS: 9,
    only: ATTACKS.join(','),
    historyTurns: 300,
    prepS: 120,
    resumeBurst: 300,
    resumeMaxTokens: 1000,
    bodyKb: 730,
    httpParallel: 3,
    timeoutS: 0,
    serverArgs: '',
  });
  const only = flags.only.split(',').filter(Boolean);
  const unknown = only.filter((name) => !(ATTACKS as readonly string[]).includes(name));
  if (only.length === 0 || unknown.length > 0) {
    process.stderr.write(`--only takes a comma-separated list of ${ATTACKS.join(', ')}\n`);
    process.exit(2);
  }
  const options: Options = {
    json: flags.json === '' ? undefined : flags.json,
    quietMs: flags.quietS * 1000,
    attackMs: flags.attackS * 1000,
    only: only as AttackName[],
    historyTurns: Math.round(flags.historyTurns),
    prepMs: flags.prepS * 1000,
    resumeBurst: Math.round(flags.resumeBurst),
    resumeMaxTokens: Math.round(flags.resumeMaxTokens),
    bodyBytes: flags.bodyKb * 1000,
    httpParallel: Math.round(flags.httpParallel),
    timeoutMs: flags.timeoutS * 1000,
    serverArgs: flags.serverArgs.split(/\s+/).filter(Boolean),
  };
  if (options.timeoutMs === 0) {
    // Start, quiet window, each attack's preparation, window and drain, with room to spare.
    options.timeoutMs = 90_000 + options.quietMs + options.only.length * (options.prepMs + options.attackMs + 60_000);
  }
  return options;
}

function emptyRow(attack: WindowName, windowMs: number): Row {
  return {
    attack,
    label: LABELS[attack],
    windowMs,
    bystander: {
      gapMs: percentilesOf([]),
      ttftMs: percentilesOf([]),
      pingMs: percentilesOf([]),
      tokens: 0,
      turns: 0,
      pingsLost: 0,
      errors: {},
    },
  };
}

type ServerHandle = { pid: number; wsUrl: string; httpUrl: string; stop: () => Promise<void> };

async function measureWindow(
  attack: WindowName,
  server: ServerHandle,
  options: Options,
  cpuMsOf: (pid: number) => number,
): Promise<Row> {
  const windowMs = attack === 'quiet' ? options.quietMs : options.attackMs;
  const row = emptyRow(attack, windowMs);
  let attacker: AttackerProcess | undefined;
  const lines: Line[] = [];
  try {
    if (attack !== 'quiet') {
      attacker = new AttackerProcess({
        attack,
        wsUrl: server.wsUrl,
        httpUrl: server.httpUrl,
        historyTurns: options.historyTurns,
        prepMs: options.prepMs,
        resumeBurst: options.resumeBurst,
        resumeMaxTokens: options.resumeMaxTokens,
        bodyBytes: options.bodyBytes,
        httpParallel: options.httpParallel,
      });
      const prepared = await attacker.next('prepared', options.prepMs + 60_000);
      process.stderr.write(`  ${LABELS[attack]}: prepared ${JSON.stringify(prepared.notes)}\n`);
    }
    const chatLine = await connectLine(server.wsUrl);
    lines.push(chatLine);
    const pingLine = await connectLine(server.wsUrl);
    lines.push(pingLine);
    // Let the server settle after the preparation.
    await delay(300);
    const cpuBefore = cpuMsOf(server.pid);
    attacker?.go(windowMs);
    const endAt = performance.now() + windowMs;
    const [chat, ping] = await Promise.all([chatBystander(chatLine, endAt), pingBystander(pingLine, endAt)]);
    row.serverCpuMs = cpuMsOf(server.pid) - cpuBefore;
    const measure = measureOf(chat.clocks, windowMs);
    row.bystander = {
      gapMs: percentilesOf(measure.interTokenMs),
      // A turn whose first token came after the window has no time to first token here.
      ttftMs: percentilesOf(measure.ttftMs.filter((ms) => !Number.isNaN(ms))),
      pingMs: percentilesOf(ping.rtts),
      tokens: measure.tokens,
      turns: chat.turns,
      pingsLost: ping.lost,
      errors: { ...chat.errors, ...ping.errors },
    };
    if (attacker !== undefined) row.attacker = (await attacker.next('result', 60_000)).result;
  } catch (error) {
    row.error = errorText(error);
  } finally {
    attacker?.kill();
    for (const line of lines) void line.client.close();
  }
  return row;
}

const ms = (value: number): string => (Number.isNaN(value) ? '–' : value.toFixed(1));

function refusalsText(row: Row): string {
  const entries = [
    ...Object.entries(row.attacker?.prepRefusals ?? {}).map(([code, n]) => [`prep ${code}`, n] as const),
    ...Object.entries(row.attacker?.refusals ?? {}),
  ];
  const text = entries.map(([code, n]) => `${code} ×${n}`).join(', ');
  return text === '' ? (row.attacker === undefined ? '–' : 'none') : text;
}

function table(rows: readonly Row[]): string {
  const lines = [
    '| attack | bystander worst gap ms | gap p99 ms | ping worst ms | ping p99 ms | attacker requests done | attacker refusals by code |',
    '| --- | --- | --- | --- | --- | --- | --- |',
  ];
  for (const row of rows) {
    const b = row.bystander;
    const done =
      row.attacker === undefined ? (row.attack === 'quiet' ? '–' : 'failed') : String(row.attacker.requestsDone);
    const refusals = row.error === undefined ? refusalsText(row) : `${refusalsText(row)} (error: ${row.error})`;
    lines.push(
      `| ${row.label} | ${ms(b.gapMs.max)} | ${ms(b.gapMs.p99)} | ${ms(b.pingMs.max)} | ${ms(b.pingMs.p99)} | ${done} | ${refusals} |`,
    );
  }
  return lines.join('\n');
}

async function main(): Promise<void> {
  const options = parseOptions(process.argv.slice(2));
  const startedAt = new Date().toISOString();
  let server: ServerHandle | undefined;
  let stopping = false;
  const stopServer = async () => {
    if (server === undefined || stopping) return;
    stopping = true;
    const { pid } = server;
    await Promise.race([server.stop().catch(() => {}), delay(15_000)]);
    try {
      process.kill(pid, 'SIGKILL');
    } catch {}
  };
  const bail = (why: string, code: number) => {
    process.stderr.write(`\nstall: ${why}; stopping\n`);
    void stopServer().finally(() => process.exit(code));
    // Exit even if stopping hangs.
    setTimeout(() => process.exit(code), 20_000).unref();
  };
  process.once('SIGINT', () => bail('interrupted', 130));
  process.once('SIGTERM', () => bail('terminated', 143));
  process.on('unhandledRejection', (reason) => bail(`unhandled rejection: ${errorText(reason)}`, 1));
  setTimeout(() => bail(`still running after ${Math.round(options.timeoutMs / 1000)} s`, 1), options.timeoutMs).unref();

  // Imported here, so that an attacker child does not load the server's modules.
  const { startServerProcess, processUsage } = await import('../tooling/serverProcess.js');
  const cpuMsOf = (pid: number) => {
    try {
      return processUsage(pid).cpuMs;
    } catch {
      return Number.NaN;
    }
  };
  const rows: Row[] = [];
  let exitCode = 0;
  try {
    const serverArgs = [...SERVER_ARGS, ...options.serverArgs];
    process.stderr.write(`starting the server (${serverArgs.join(' ')})\n`);
    server = await startServerProcess(serverArgs);
    const probe = await connectLine(server.wsUrl);
    await probe.client.close();
    for (const attack of ['quiet', ...options.only] as const) {
      process.stderr.write(`${LABELS[attack]}: ${attack === 'quiet' ? options.quietMs : options.attackMs} ms window\n`);
      const row = await measureWindow(attack, server, options, cpuMsOf);
      if (row.error !== undefined) process.stderr.write(`  ${LABELS[attack]}: ${row.error}\n`);
      rows.push(row);
      // Let the attack's aftermath (queued work, closing sockets) pass before the next window.
      await delay(1_000);
    }
  } catch (error) {
    process.stderr.write(`stall: ${errorText(error)}\n`);
    exitCode = 1;
  } finally {
    await stopServer();
  }
  if (rows.length > 0) {
    console.log(
      `\nbystander: chat (maxTokens ${BYSTANDER_PARAMS.maxTokens}, temperature 0) and ping every ${PING_EVERY_MS} ms; quiet ${options.quietMs / 1000} s, attacks ${options.attackMs / 1000} s each\n`,
    );
    console.log(table(rows));
  }
  if (options.json !== undefined) {
    const report = {
      startedAt,
      cwd: process.cwd(),
      serverArgs: [...SERVER_ARGS, ...options.serverArgs],
      options,
      rows,
    };
    writeFileSync(options.json, `${JSON.stringify(report, null, 2)}\n`);
    process.stderr.write(`wrote ${options.json}\n`);
  }
  process.exit(exitCode);
}

if (process.argv[2] === '--attacker') await runAttacker(JSON.parse(process.argv[3] ?? '{}') as AttackerConfig);
else await main();
