import type { Socket } from 'node:net';
import WebSocket from 'ws';
import type { GenerationParams, ServerFrame } from '../protocol/index.js';
import { PROTOCOL_VERSION } from '../protocol/version.js';
import type { Recorder } from './Recorder.js';

export type TurnHooks = {
  /** Called with the running token count; may cancel, drop the connection or pause reading. */
  onTokens?: (seq: number, user: WsVirtualUser, genId: string) => void;
};

export type TurnResult = { finish: string; tokens: number } | { error: string; retryAfterMs?: number };

/** One simulated user on its own WebSocket, measuring what it sees. */
export class WsVirtualUser {
  private socket: WebSocket | undefined;
  private handler: (frame: ServerFrame) => void = () => {};
  private requests = 0;
  sessionId: string | undefined;
  private resumeToken: string | undefined;

  constructor(
    private readonly url: string,
    private readonly recorder: Recorder,
    private readonly apiKey: string | undefined,
  ) {}

  async connect(): Promise<boolean> {
    const started = performance.now();
    const headers = this.apiKey === undefined ? {} : { authorization: `Bearer ${this.apiKey}` };
    const socket = new WebSocket(this.url, [PROTOCOL_VERSION], { headers });
    this.socket = socket;
    socket.on('message', (data: Buffer) => this.handler(JSON.parse(data.toString()) as ServerFrame));
    const welcomed = await new Promise<boolean>((resolve) => {
      this.handler = (frame) => frame.type === 'welcome' && resolve(true);
      socket.once('error', () => resolve(false));
      socket.once('close', () => resolve(false));
      socket.once('unexpected-response', () => resolve(false));
    });
    if (!welcomed) {
      this.recorder.connectionFailures += 1;
      return false;
    }
    this.recorder.record('connect', performance.now() - started);
    return true;
  }

  get open(): boolean {
    return this.socket?.readyState === WebSocket.OPEN;
  }

  /** Opens a new session, or reattaches the current one after a reconnect. */
  async openSession(reattach = false): Promise<boolean> {
    const id = `open-${++this.requests}`;
    const frame = reattach
      ? { type: 'session.open', id, sessionId: this.sessionId, resumeToken: this.resumeToken }
      : { type: 'session.open', id };
    const reply = await this.request(
      frame,
      (f) => (f.type === 'session.opened' || f.type === 'error') && 'id' in f && f.id === id,
    );
    if (reply?.type !== 'session.opened') return false;
    this.sessionId = reply.sessionId;
    this.resumeToken = reply.resumeToken;
    return true;
  }

  /**
   * Leaves and forgets the current session, so the connection can open another (each holds a
   * bounded number) and the key's session budget is given back.
   */
  async closeSession(): Promise<void> {
    if (this.sessionId === undefined || !this.open) return;
    const id = `close-${++this.requests}`;
    const frame = { type: 'session.close', id, sessionId: this.sessionId, forget: true };
    await this.request(frame, (f) => 'id' in f && f.id === id);
    this.sessionId = undefined;
  }

  /** One chat turn, measured from send to generation.done. */
  async turn(content: string, params: GenerationParams, hooks: TurnHooks = {}): Promise<TurnResult> {
    const id = `chat-${++this.requests}`;
    const sentAt = performance.now();
    let genId: string | undefined;
    let lastSeq = 0;
    let lastAt: number | undefined;
    let firstAt: number | undefined;
    this.recorder.requests += 1;
    const done = await this.request({ type: 'chat.send', id, sessionId: this.sessionId, content, params }, (frame) => {
      if (frame.type === 'error' && (frame.id === id || (genId !== undefined && frame.genId === genId))) return true;
      if (frame.type === 'generation.queued' && frame.id === id) genId = frame.genId;
      if (frame.type === 'generation.started' && frame.genId === genId)
        this.recorder.record('queue', performance.now() - sentAt);
      if (frame.type === 'token' && frame.genId === genId && frame.seq > lastSeq) {
        const now = performance.now();
        if (firstAt === undefined) {
          firstAt = now;
          this.recorder.record('ttft', now - sentAt);
        } else if (lastAt !== undefined) {
          const tokens = frame.seq - lastSeq;
          for (let i = 0; i < tokens; i++) this.recorder.record('itl', (now - lastAt) / tokens);
        }
        this.recorder.addTokens(frame.seq - lastSeq);
        lastSeq = frame.seq;
        lastAt = now;
        hooks.onTokens?.(frame.seq, this, frame.genId);
      }
      return frame.type === 'generation.done' && frame.genId === genId;
    });
    if (done === undefined) return { error: 'connection_lost' };
    if (done.type === 'error') {
      this.recorder.error(done.code);
      return done.retryAfterMs === undefined
        ? { error: done.code }
        : { error: done.code, retryAfterMs: done.retryAfterMs };
    }
    if (done.type !== 'generation.done') return { error: 'unexpected' };
    this.recorder.record('e2e', performance.now() - sentAt);
    this.recorder.finish(
      done.finish,
      done.usage.completionTokens,
      firstAt === undefined ? 0 : performance.now() - firstAt,
    );
    return { finish: done.finish, tokens: done.usage.completionTokens };
  }

  /** Cancels and measures the time to the acknowledgement. */
  cancel(genId: string): void {
    const sentAt = performance.now();
    const id = `stop-${++this.requests}`;
    const previous = this.handler;
    this.handler = (frame) => {
      if (frame.type === 'cancel.ack' && frame.id === id) this.recorder.record('cancelAck', performance.now() - sentAt);
      previous(frame);
    };
    this.socket?.send(JSON.stringify({ type: 'generation.cancel', id, genId }));
  }

  /** Replays a generation after a reconnect, returning its done frame if the resume worked. */
  async resume(genId: string, afterSeq: number): Promise<boolean> {
    this.recorder.resumes.tried += 1;
    const id = `resume-${++this.requests}`;
    let seq = afterSeq;
    const reply = await this.request({ type: 'generation.resume', id, genId, afterSeq }, (frame) => {
      if (frame.type === 'token' && frame.genId === genId) {
        if (frame.seq <= seq) return true;
        this.recorder.addTokens(frame.seq - seq);
        seq = frame.seq;
      }
      return (frame.type === 'generation.done' && frame.genId === genId) || (frame.type === 'error' && frame.id === id);
    });
    const ok = reply?.type === 'generation.done' && reply.usage.completionTokens === seq;
    if (ok) this.recorder.resumes.succeeded += 1;
    else if (reply?.type === 'error') this.recorder.error(reply.code);
    return ok;
  }

  /** Stops reading for `ms`, like a frozen tab. */
  pauseReading(ms: number): void {
    const raw = (this.socket as unknown as { _socket?: Socket } | undefined)?._socket;
    raw?.pause();
    setTimeout(() => raw?.resume(), ms).unref();
  }

  ping(): void {
    if (this.open) this.socket?.send(JSON.stringify({ type: 'ping', id: `ping-${++this.requests}` }));
  }

  drop(): void {
    this.socket?.terminate();
  }

  close(): void {
    this.socket?.close();
  }

  /** Sends a frame and resolves with the first frame `until` accepts, or undefined if the socket closes first. */
  private request(frame: object, until: (frame: ServerFrame) => boolean): Promise<ServerFrame | undefined> {
    const socket = this.socket;
    if (socket?.readyState !== WebSocket.OPEN) return Promise.resolve(undefined);
    return new Promise((resolve) => {
      const onClose = () => resolve(undefined);
      socket.once('close', onClose);
      this.handler = (received) => {
        if (!until(received)) return;
        socket.off('close', onClose);
        resolve(received);
      };
      socket.send(JSON.stringify(frame));
    });
  }
}
