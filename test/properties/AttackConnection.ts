import WebSocket from 'ws';
import { PROTOCOL_VERSION, ServerFrame } from '../../protocol/index.js';
import { type Answer, type FrameCase, type Ref, renderFrame } from './frames.js';

/** A frame sent and not yet answered; `index` is its place in the order of sending. */
type Pending = { label: string; sent: string; answer: Answer; genId: string | undefined; index: number };
/** A resume whose generation's `generation.done` may come before the server has handled the resume. */
type PendingResume = Pending & { doneSeen: boolean };

/** The server's default --max-frame-bytes. */
const MAX_FRAME_BYTES = 64 * 1024;
/** How many of its latest sessions and generations a connection keeps to aim frames at. */
const REMEMBERED = 64;

/**
 * One attacker: sends generated frames over a `ws` connection and checks every frame that comes
 * back against the answers the sent frames are documented to get. Each request id must get exactly
 * its documented answer; each frame without a usable id exactly one id-less error, in order (the
 * server answers those synchronously, in arrival order). Anything else is a violation.
 *
 * A resume that succeeds echoes no id: its answer is the replay, ending with the generation's
 * `generation.done`. So a resume counts as handled without error once a frame sent after it has
 * had its answer (the server handles a connection's frames in order and refuses a resume at once),
 * and then it waits for a `generation.done` of its generation that came after it was sent.
 */
export class AttackConnection {
  readonly violations: string[] = [];
  /** Generated frames sent, how many of them had no usable id, and the id-less errors received. */
  sent = 0;
  sentWithoutId = 0;
  idlessErrors = 0;
  closeCode: number | undefined;
  private readonly pending = new Map<string, Pending>();
  private readonly idless: Pending[] = [];
  /** Resumes not yet known to be handled, and resumes handled without error that wait for their done. */
  private readonly resumes = new Map<string, PendingResume>();
  private readonly awaitingDone = new Map<string, Pending>();
  /** Requests whose `generation.queued` may come again (a new queue position). */
  private readonly following = new Set<string>();
  private readonly sessions: { id: string; token: string | undefined }[] = [];
  private readonly generations: string[] = [];
  private readonly knownGenerations = new Set<string>();
  private framesSent = 0;
  /** Every frame up to this index has been handled by the server. */
  private handledThrough = 0;
  private counter = 0;
  private whenSettled: (() => void) | undefined;

  private constructor(
    private readonly socket: WebSocket,
    readonly tag: string,
  ) {
    socket.on('message', (data: Buffer) => this.receive(data.toString()));
    socket.on('close', (code) => {
      this.closeCode = code;
      this.violations.push(`${tag}: the connection closed with ${code}`);
      this.whenSettled?.();
    });
    // 'close' follows every error.
    socket.on('error', () => {});
  }

  static connect(url: string, tag: string): Promise<AttackConnection> {
    return new Promise((resolve, reject) => {
      const socket = new WebSocket(url, [PROTOCOL_VERSION]);
      socket.once('message', (data: Buffer) => {
        const welcome = ServerFrame.safeParse(JSON.parse(data.toString()));
        if (welcome.success && welcome.data.type === 'welcome') resolve(new AttackConnection(socket, tag));
        else reject(new Error(`${tag}: the first frame was not a welcome: ${data.toString().slice(0, 200)}`));
      });
      socket.once('error', reject);
    });
  }

  /** Renders and sends one generated frame, and records the answer it must get. */
  send(frameCase: FrameCase): void {
    const rendered = renderFrame(frameCase, this);
    const bytes = typeof rendered.data === 'string' ? Buffer.byteLength(rendered.data) : rendered.data.byteLength;
    // The generators keep frames within --max-frame-bytes; a bigger one would close the connection (1009).
    if (bytes > MAX_FRAME_BYTES) throw new Error(`${frameCase.label}: a generated frame of ${bytes} bytes is too big`);
    const sent = (typeof rendered.data === 'string' ? rendered.data : `<${bytes} binary bytes>`).slice(0, 200);
    const index = ++this.framesSent;
    const pending: Pending = { label: frameCase.label, sent, answer: frameCase.answer, genId: rendered.genId, index };
    if (rendered.id === undefined) {
      this.idless.push(pending);
      this.sentWithoutId += 1;
    } else if (frameCase.answer.settledByDone === true) this.resumes.set(rendered.id, { ...pending, doneSeen: false });
    else this.pending.set(rendered.id, pending);
    this.sent += 1;
    this.socket.send(rendered.data, { binary: rendered.binary });
  }

  /**
   * Sends a ping and waits for its pong: by then the server has handled every frame sent before
   * it, so each id-less frame must have had its error.
   */
  async barrier(timeoutMs: number): Promise<void> {
    const id = this.nextId('barrier');
    const answer: Answer = { withId: true, replies: ['pong'], codes: [] };
    this.pending.set(id, { label: 'barrier ping', sent: id, answer, genId: undefined, index: ++this.framesSent });
    const before = this.idless.length;
    this.socket.send(JSON.stringify({ type: 'ping', id }));
    await this.waitFor(() => !this.pending.has(id), timeoutMs, `no pong for the barrier ping ${id}`);
    if (this.idless.length > 0) {
      const first = this.idless[0] as Pending;
      this.violations.push(
        `${this.tag}: ${this.idless.length} of ${before} id-less frames got no error, e.g. ${describe(first)}`,
      );
      this.idless.length = 0;
    }
  }

  /** Waits until every request sent has had its answer (cancel acks and resumes may take a while). */
  async settled(timeoutMs: number): Promise<void> {
    const waiting = () => this.pending.size + this.resumes.size + this.awaitingDone.size;
    await this.waitFor(() => waiting() === 0, timeoutMs, 'requests without an answer');
  }

  /** Closes the connection on purpose (no violation). */
  async close(): Promise<void> {
    if (this.closeCode !== undefined) return;
    this.socket.removeAllListeners('close');
    const closed = new Promise<void>((resolve) => this.socket.once('close', () => resolve()));
    this.socket.close();
    await closed;
  }

  // RenderContext: ids and references to this connection's own state.

  nextId(prefix: string): string {
    const suffix = `#${this.tag}.${++this.counter}`;
    return prefix.slice(0, 64 - suffix.length) + suffix;
  }

  session(ref: Ref): { id: string; token: string | undefined } {
    if ('madeUp' in ref) return { id: ref.madeUp, token: undefined };
    return this.sessions[ref.known % Math.max(1, this.sessions.length)] ?? { id: 's_none', token: undefined };
  }

  generation(ref: Ref): string {
    if ('madeUp' in ref) return ref.madeUp;
    return this.generations[ref.known % Math.max(1, this.generations.length)] ?? 'g_none';
  }

  private waitFor(done: () => boolean, timeoutMs: number, what: string): Promise<void> {
    return new Promise((resolve) => {
      const finish = () => {
        clearTimeout(timer);
        this.whenSettled = undefined;
        resolve();
      };
      const timer = setTimeout(() => {
        const waiting = [...this.pending.values(), ...this.resumes.values(), ...this.awaitingDone.values()];
        const examples = waiting.slice(0, 5).map(describe).join('\n    ');
        this.violations.push(
          `${this.tag}: ${what} within ${timeoutMs} ms (${waiting.length} waiting), e.g.\n    ${examples}`,
        );
        this.pending.clear();
        this.resumes.clear();
        this.awaitingDone.clear();
        finish();
      }, timeoutMs);
      this.whenSettled = () => {
        if (done() || this.closeCode !== undefined) finish();
      };
      this.whenSettled();
    });
  }

  private receive(raw: string): void {
    let value: unknown;
    try {
      value = JSON.parse(raw);
    } catch {
      this.violate('a frame that is not JSON', raw);
      return;
    }
    const decoded = ServerFrame.safeParse(value);
    if (!decoded.success) {
      const issues = decoded.error.issues.slice(0, 3).map((issue) => `${issue.path.join('.')}: ${issue.message}`);
      this.violate(`a frame outside the server frame schema (${issues.join('; ')})`, raw);
      return;
    }
    this.check(decoded.data, raw);
    this.whenSettled?.();
  }

  private check(frame: ServerFrame, raw: string): void {
    switch (frame.type) {
      case 'error':
        this.checkError(frame.id, frame.code, raw);
        return;
      case 'session.opened':
        if (!this.sessions.some((session) => session.id === frame.sessionId)) {
          this.sessions.push({ id: frame.sessionId, token: frame.resumeToken });
          if (this.sessions.length > REMEMBERED) this.sessions.shift();
        }
        this.settle(frame.id, frame.type, raw);
        return;
      case 'session.closed':
      case 'cancel.ack':
      case 'pong':
        this.settle(frame.id, frame.type, raw);
        return;
      case 'generation.queued':
        this.checkQueued(frame.id, frame.genId, raw);
        return;
      case 'generation.started':
      case 'token':
      case 'generation.done':
        if (!this.knownGenerations.has(frame.genId))
          this.violate(`${frame.type} of a generation it never asked for`, raw);
        if (frame.type === 'generation.done') this.doneCame(frame.genId);
        return;
      case 'rate_limits':
        return;
      case 'welcome':
      case 'server.notice':
      // It never offers tools.
      case 'tool.call':
        this.violate(`an unexpected ${frame.type}`, raw);
        return;
      default:
        frame satisfies never;
    }
  }

  private checkError(id: string | undefined, code: string, raw: string): void {
    // An empty id names no request: it counts as none (the frame that carried it was counted id-less).
    if (id === undefined || id === '') {
      this.idlessErrors += 1;
      const expected = this.idless.shift();
      if (expected === undefined) {
        this.violate('an id-less error that answers no frame', raw);
        return;
      }
      if (!expected.answer.codes.some((allowed) => allowed === code)) {
        this.violate(
          `an id-less error ${code} where ${expected.answer.codes.join('|')} was due (${describe(expected)})`,
          raw,
        );
      }
      this.handled(expected.index);
      return;
    }
    const expected = this.pending.get(id) ?? this.resumes.get(id);
    if (expected === undefined) {
      this.violate('an error for a request that waits for no answer', raw);
      return;
    }
    this.pending.delete(id);
    this.resumes.delete(id);
    if (!expected.answer.codes.some((allowed) => allowed === code)) {
      const due = [...expected.answer.replies, ...expected.answer.codes.map((c) => `error ${c}`)].join(' | ') || 'none';
      this.violate(`error ${code} where ${due} was due (${describe(expected)})`, raw);
    }
    this.handled(expected.index);
  }

  private settle(id: string, type: ServerFrame['type'], raw: string): void {
    const expected = this.pending.get(id);
    if (expected === undefined) {
      this.violate(`a ${type} for a request that waits for no answer`, raw);
      return;
    }
    this.pending.delete(id);
    if (!expected.answer.replies.includes(type))
      this.violate(`a ${type} that does not answer ${describe(expected)}`, raw);
    this.handled(expected.index);
  }

  private checkQueued(id: string, genId: string, raw: string): void {
    if (!this.knownGenerations.has(genId)) {
      this.knownGenerations.add(genId);
      this.generations.push(genId);
      if (this.generations.length > REMEMBERED) this.generations.shift();
    }
    const expected = this.pending.get(id);
    if (expected?.answer.replies.includes('generation.queued')) {
      this.pending.delete(id);
      this.following.add(id);
      this.handled(expected.index);
    } else if (this.resumes.has(id) || this.awaitingDone.has(id)) {
      // A resumed generation that still waits for a sequence: its new positions carry the resume's id.
      this.following.add(id);
    } else if (!this.following.has(id)) this.violate('a generation.queued for a request that waits for no answer', raw);
  }

  /** The server has handled every frame up to `index`: the resumes among them that got no error succeeded. */
  private handled(index: number): void {
    if (index <= this.handledThrough) return;
    this.handledThrough = index;
    for (const [id, resume] of this.resumes) {
      if (resume.index > index) continue;
      this.resumes.delete(id);
      if (!resume.doneSeen) this.awaitingDone.set(id, resume);
    }
  }

  private doneCame(genId: string): void {
    for (const resume of this.resumes.values()) if (resume.genId === genId) resume.doneSeen = true;
    for (const [id, resume] of this.awaitingDone) if (resume.genId === genId) this.awaitingDone.delete(id);
  }

  private violate(what: string, raw: string): void {
    this.violations.push(`${this.tag}: ${what}: ${raw.slice(0, 300)}`);
  }
}

function describe(pending: Pending): string {
  return `[${pending.label}] ${pending.sent}`;
}
