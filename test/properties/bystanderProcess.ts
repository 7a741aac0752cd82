import { setTimeout as delay } from 'node:timers/promises';
import type WebSocket from 'ws';
import { ChatClient, type SocketFactory } from '../../client/ChatClient.js';
import { ClientError } from '../../client/ClientError.js';
import { nodeSockets } from '../../client/node.js';
import { ServerFrame } from '../../protocol/index.js';
import { percentilesOf } from '../../tooling/latency.js';
import type { BystanderCommand, BystanderMeasures, BystanderMessage } from './bystander.js';

/**
 * The bystander, run as a child process of the test (see bystander.ts): two connections of the
 * project's client (client/), one chatting in a loop and timing the gap between its token frames,
 * the other pinging every PING_EVERY_MS and timing the round trip. Being a process of its own,
 * its clock does not stop while the test process is busy generating frames.
 */

const PARAMS = { maxTokens: 48, temperature: 0 };
/** A fresh session now and then keeps the prompt short, so every turn costs the same. */
const TURNS_PER_SESSION = 8;
const PING_EVERY_MS = 20;

/** What has been seen since the last report. */
type Seen = {
  tokens: number;
  gaps: number[];
  worstGapMs: number;
  worstGapEndedAt: number;
  turns: number;
  finishes: Record<string, number>;
  ttfts: number[];
  pings: number[];
  errors: string[];
};

let stopping = false;
let seen = nothingSeen();
let reportedAt = performance.now();
/**
 * The answer in progress. Its first token is timed from `generation.started`: time spent queued
 * behind other clients' answers is the server's capacity, not a stall.
 */
let current: { startedAt: number | undefined; lastTokenAt: number | undefined } | undefined;
/** When each ping not yet answered was sent. */
const pingsInFlight = new Map<number, number>();

function nothingSeen(): Seen {
  return {
    tokens: 0,
    gaps: [],
    worstGapMs: 0,
    worstGapEndedAt: 0,
    turns: 0,
    finishes: {},
    ttfts: [],
    pings: [],
    errors: [],
  };
}

/** Keeps every gap, and when the worst one ended, to match it with what the server was doing then. */
function recordGap(gap: number): void {
  seen.gaps.push(gap);
  if (gap <= seen.worstGapMs) return;
  seen.worstGapMs = gap;
  seen.worstGapEndedAt = Date.now();
}

/** An error, unless the bystander is stopping (closing its connections fails what is in flight). */
function recordError(what: string, error: unknown): void {
  if (stopping) return;
  const text = error instanceof ClientError ? `${error.code}: ${error.message}` : String(error);
  seen.errors.push(`${what}: ${text}`.slice(0, 300));
}

/**
 * The report since the last one. What is still awaited counts with its age so far (a ping not yet
 * answered, the answer's next token or its first one), timed from the last report at the
 * earliest, so a stall that spans two reports is seen in both.
 */
function takeReport(): BystanderMeasures {
  const now = performance.now();
  for (const sentAt of pingsInFlight.values()) seen.pings.push(now - Math.max(sentAt, reportedAt));
  if (current?.lastTokenAt !== undefined) recordGap(now - Math.max(current.lastTokenAt, reportedAt));
  else if (current?.startedAt !== undefined) seen.ttfts.push(now - Math.max(current.startedAt, reportedAt));
  const { tokens, worstGapEndedAt, turns, finishes, errors } = seen;
  const report = {
    tokens,
    gapMs: percentilesOf(seen.gaps),
    worstGapEndedAt,
    turns,
    finishes,
    ttftMs: percentilesOf(seen.ttfts),
    pingMs: percentilesOf(seen.pings),
    errors,
  };
  reportedAt = now;
  seen = nothingSeen();
  return report;
}

async function chatLoop(client: ChatClient): Promise<void> {
  let sessionId: string | undefined;
  let turn = 0;
  while (!stopping && client.isOpen) {
    if (sessionId === undefined || turn === TURNS_PER_SESSION) {
      if (sessionId !== undefined)
        client.closeSession(sessionId, { forget: true }).catch((error) => recordError('session.close', error));
      try {
        ({ sessionId } = await client.openSession());
      } catch (error) {
        recordError('session.open', error);
        sessionId = undefined;
        await delay(100);
        continue;
      }
      turn = 0;
    }
    turn += 1;
    await oneTurn(client, sessionId);
  }
}

/** One answer: times the first token from its start (not its time queued) and every gap between token frames. */
async function oneTurn(client: ChatClient, sessionId: string): Promise<void> {
  const turn = { startedAt: undefined as number | undefined, lastTokenAt: undefined as number | undefined };
  current = turn;
  const generation = client.chat(sessionId, 'Once upon a time', PARAMS);
  generation.onStarted = () => {
    turn.startedAt = performance.now();
  };
  try {
    for await (const _chunk of generation) {
      const now = performance.now();
      // Timed from the last report at the earliest: that report counted the time before it.
      if (turn.lastTokenAt === undefined) seen.ttfts.push(now - Math.max(turn.startedAt ?? now, reportedAt));
      else recordGap(now - Math.max(turn.lastTokenAt, reportedAt));
      seen.tokens += 1;
      turn.lastTokenAt = now;
    }
    const { finish } = await generation.done;
    seen.turns += 1;
    seen.finishes[finish] = (seen.finishes[finish] ?? 0) + 1;
  } catch (error) {
    recordError('chat.send', error);
    await delay(100);
  } finally {
    current = undefined;
  }
}

async function pingLoop(client: ChatClient): Promise<void> {
  for (let n = 0; !stopping && client.isOpen; n++) {
    pingsInFlight.set(n, performance.now());
    const key = n;
    client.ping().then(
      (rtt) => {
        pingsInFlight.delete(key);
        // Timed from the last report at the earliest, as the gaps are.
        seen.pings.push(Math.min(rtt, performance.now() - reportedAt));
      },
      (error: unknown) => {
        pingsInFlight.delete(key);
        recordError('ping', error);
      },
    );
    await delay(PING_EVERY_MS);
  }
}

/** Sockets from client/node.ts that also check every frame against the protocol's schema. */
function checkedSockets(): SocketFactory {
  const sockets = nodeSockets();
  return (url, protocols) => {
    const socket = sockets(url, protocols);
    // nodeSockets makes `ws` sockets; the client itself only decodes frames lightly.
    (socket as unknown as WebSocket).on('message', (data) => {
      const text = String(data);
      let decoded = false;
      try {
        decoded = ServerFrame.safeParse(JSON.parse(text)).success;
      } catch {}
      if (!decoded) seen.errors.push(`undecodable frame: ${text.slice(0, 200)}`);
    });
    return socket;
  };
}

function post(message: BystanderMessage): void {
  process.send?.(message);
}

async function main(): Promise<void> {
  const url = process.argv[2];
  if (url === undefined) throw new Error('usage: bystanderProcess.ts <ws url>');
  const createSocket = checkedSockets();
  const [chatClient, pingClient] = await Promise.all([
    ChatClient.connect(url, { createSocket }),
    ChatClient.connect(url, { createSocket }),
  ]);
  for (const client of [chatClient, pingClient]) {
    void client.closed.then(({ code }) => {
      if (!stopping) seen.errors.push(`connection closed with ${code}`);
    });
  }
  const loops = Promise.all([chatLoop(chatClient), pingLoop(pingClient)]);
  // Never outlive the test that started it.
  const orphaned = () => process.exit(0);
  process.on('disconnect', orphaned);
  process.on('message', (command: BystanderCommand) => {
    if (command.kind === 'report') post({ kind: 'report', report: takeReport() });
    if (command.kind === 'stop') {
      stopping = true;
      const final = takeReport();
      void chatClient.close();
      void pingClient.close();
      process.off('disconnect', orphaned);
      post({ kind: 'report', report: final });
      process.disconnect?.();
    }
  });
  post({ kind: 'ready' });
  await loops;
}

main().catch((error: unknown) => {
  post({ kind: 'failed', error: error instanceof Error ? (error.stack ?? error.message) : String(error) });
  process.exit(1);
});
