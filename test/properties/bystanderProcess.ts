import { setTimeout as delay } from 'node:timers/promises';
import WebSocket from 'ws';
import { PROTOCOL_VERSION, ServerFrame } from '../../protocol/index.js';
import type { BystanderCommand, BystanderMessage, BystanderReport } from './bystander.js';

/**
 * The bystander, run as a child process of the test (see bystander.ts): one connection chats in a
 * loop and times the gap between its token frames; a second one pings every PING_EVERY_MS and
 * times the round trip. Being a process of its own, its clock does not stop while the test
 * process is busy generating frames.
 */

const PARAMS = { maxTokens: 48, temperature: 0 };
/** A fresh session now and then keeps the prompt short, so every turn costs the same. */
const TURNS_PER_SESSION = 8;
const PING_EVERY_MS = 20;

type Frame = ServerFrame;

class Line {
  private waiters: Array<{ match: (frame: Frame) => boolean; resolve: (frame: Frame) => void }> = [];
  onFrame: ((frame: Frame) => void) | undefined;
  closeCode: number | undefined;

  constructor(readonly socket: WebSocket) {
    socket.on('message', (data: Buffer) => {
      const decoded = ServerFrame.safeParse(JSON.parse(data.toString()));
      if (!decoded.success) {
        report.errors.push(`undecodable frame: ${data.toString().slice(0, 200)}`);
        return;
      }
      this.onFrame?.(decoded.data);
      const waiter = this.waiters.find((w) => w.match(decoded.data));
      if (waiter === undefined) return;
      this.waiters = this.waiters.filter((w) => w !== waiter);
      waiter.resolve(decoded.data);
    });
    socket.on('close', (code) => {
      this.closeCode = code;
      if (!stopping) report.errors.push(`connection closed with ${code}`);
    });
    socket.on('error', () => {});
  }

  static open(url: string): Promise<Line> {
    return new Promise((resolve, reject) => {
      const socket = new WebSocket(url, [PROTOCOL_VERSION]);
      const line = new Line(socket);
      line.next((frame) => frame.type === 'welcome').then(() => resolve(line), reject);
      socket.once('error', reject);
    });
  }

  send(frame: object): void {
    this.socket.send(JSON.stringify(frame));
  }

  next(match: (frame: Frame) => boolean): Promise<Frame> {
    return new Promise((resolve) => this.waiters.push({ match, resolve }));
  }
}

let stopping = false;
let report = emptyReport();
/** The answer being received: when it was asked for, and when its last token came. */
/**
 * The answer in progress. Its first token is timed from `generation.started`: time spent queued
 * behind other clients' answers is the server's capacity, not a stall.
 */
let current: { startedAt: number | undefined; lastTokenAt: number | undefined } | undefined;
let reportedAt = performance.now();
let gaps: number[] = [];
let pingTimes: number[] = [];
const pingsInFlight = new Map<string, number>();

function emptyReport(): BystanderReport {
  return {
    tokens: 0,
    gaps: 0,
    worstGapMs: 0,
    worstGapEndedAt: 0,
    p99GapMs: 0,
    turns: 0,
    finishes: {},
    worstTtftMs: 0,
    pings: 0,
    worstPingMs: 0,
    p99PingMs: 0,
    errors: [],
  };
}

/** Keeps the worst gap, and when it ended, to match it with what the server was doing then. */
function recordGap(gap: number): void {
  if (gap <= report.worstGapMs) return;
  report.worstGapMs = gap;
  report.worstGapEndedAt = Date.now();
}

function p99(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * 0.99))] ?? 0;
}

/**
 * The report since the last one. What is still awaited counts with its age so far (a ping not yet
 * answered, the answer's next token or its first one), so a stall that spans two reports is seen.
 */
function takeReport(): BystanderReport {
  const now = performance.now();
  for (const sentAt of pingsInFlight.values()) report.worstPingMs = Math.max(report.worstPingMs, now - sentAt);
  if (current?.lastTokenAt !== undefined) recordGap(now - Math.max(current.lastTokenAt, reportedAt));
  else if (current?.startedAt !== undefined) {
    report.worstTtftMs = Math.max(report.worstTtftMs, now - Math.max(current.startedAt, reportedAt));
  }
  const taken = { ...report, p99GapMs: p99(gaps), p99PingMs: p99(pingTimes) };
  reportedAt = now;
  report = emptyReport();
  gaps = [];
  pingTimes = [];
  return taken;
}

async function chatLoop(line: Line): Promise<void> {
  let sessionId: string | undefined;
  let turn = 0;
  for (let n = 0; !stopping; n++) {
    if (sessionId === undefined || turn === TURNS_PER_SESSION) {
      if (sessionId !== undefined) line.send({ type: 'session.close', id: `close${n}`, sessionId, forget: true });
      line.send({ type: 'session.open', id: `open${n}` });
      const opened = await line.next((f) => 'id' in f && f.id === `open${n}`);
      if (opened.type !== 'session.opened') {
        report.errors.push(`session.open answered ${JSON.stringify(opened).slice(0, 200)}`);
        await delay(100);
        continue;
      }
      sessionId = opened.sessionId;
      turn = 0;
    }
    turn += 1;
    await oneTurn(line, sessionId, `chat${n}`);
  }
}

/** One answer: times the first token from its start (not its time queued) and every gap between token frames. */
async function oneTurn(line: Line, sessionId: string, id: string): Promise<void> {
  const turn = { startedAt: undefined as number | undefined, lastTokenAt: undefined as number | undefined };
  current = turn;
  let genId: string | undefined;
  line.onFrame = (frame) => {
    // One answer at a time on this line: its start may arrive before its genId is known here.
    if (frame.type === 'generation.started' && (genId === undefined || frame.genId === genId)) {
      turn.startedAt = performance.now();
    }
    if (frame.type !== 'token' || frame.genId !== genId) return;
    const now = performance.now();
    // Timed from the last report at the earliest: that report counted the time before it.
    if (turn.lastTokenAt === undefined)
      report.worstTtftMs = Math.max(report.worstTtftMs, now - Math.max(turn.startedAt ?? now, reportedAt));
    else {
      const gap = now - Math.max(turn.lastTokenAt, reportedAt);
      gaps.push(gap);
      report.gaps += 1;
      recordGap(gap);
    }
    report.tokens += 1;
    turn.lastTokenAt = now;
  };
  line.send({ type: 'chat.send', id, sessionId, content: 'Once upon a time', params: PARAMS });
  const queued = await line.next((f) => 'id' in f && f.id === id);
  if (queued.type !== 'generation.queued') {
    report.errors.push(`chat.send answered ${JSON.stringify(queued).slice(0, 200)}`);
    current = undefined;
    await delay(100);
    return;
  }
  genId = queued.genId;
  const done = await line.next((f) => f.type === 'generation.done' && f.genId === queued.genId);
  current = undefined;
  if (done.type === 'generation.done') {
    report.turns += 1;
    report.finishes[done.finish] = (report.finishes[done.finish] ?? 0) + 1;
  }
  line.onFrame = undefined;
}

async function pingLoop(line: Line): Promise<void> {
  line.onFrame = (frame) => {
    if (frame.type !== 'pong') return;
    const sentAt = pingsInFlight.get(frame.id);
    if (sentAt === undefined) return;
    pingsInFlight.delete(frame.id);
    const rtt = performance.now() - Math.max(sentAt, reportedAt);
    pingTimes.push(rtt);
    report.pings += 1;
    report.worstPingMs = Math.max(report.worstPingMs, rtt);
  };
  for (let n = 0; !stopping; n++) {
    pingsInFlight.set(`p${n}`, performance.now());
    line.send({ type: 'ping', id: `p${n}` });
    await delay(PING_EVERY_MS);
  }
}

function post(message: BystanderMessage): void {
  process.send?.(message);
}

async function main(): Promise<void> {
  const url = process.argv[2];
  if (url === undefined) throw new Error('usage: bystanderProcess.ts <ws url>');
  const [chatLine, pingLine] = await Promise.all([Line.open(url), Line.open(url)]);
  const loops = Promise.all([chatLoop(chatLine), pingLoop(pingLine)]);
  // Never outlive the test that started it.
  const orphaned = () => process.exit(0);
  process.on('disconnect', orphaned);
  process.on('message', (command: BystanderCommand) => {
    if (command.kind === 'report') post({ kind: 'report', report: takeReport() });
    if (command.kind === 'stop') {
      stopping = true;
      const final = takeReport();
      chatLine.socket.close();
      pingLine.socket.close();
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
