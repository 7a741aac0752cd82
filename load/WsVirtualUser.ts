import type { Socket } from 'node:net';
import WebSocket from 'ws';
import { ChatClient, type WebSocketLike } from '../client/ChatClient.js';
import { ClientError } from '../client/ClientError.js';
import type { ClientGeneration } from '../client/ClientGeneration.js';
import type { GenerationParams } from '../protocol/index.js';
import { StreamClock } from '../tooling/latency.js';
import type { Recorder } from './Recorder.js';

export type TurnHooks = {
  /** Called with the running token count; may cancel or pause reading. */
  onTokens?: (seq: number, user: WsVirtualUser, generation: ClientGeneration) => void;
  /** Drop the connection after this many tokens, then reconnect, reattach and resume (the reconnect scenario). */
  dropAfter?: number;
};

export type TurnResult = { finish: string; tokens: number } | { error: string; retryAfterMs?: number };

/**
 * One simulated user on its own connection (the project's client), measuring what it sees. Its
 * sessions may run turns at once: a bot multiplexing many conversations over one connection.
 */
export class WsVirtualUser {
  private client: ChatClient | undefined;
  /** The ws socket under the client, to pause reading like a frozen tab. */
  private socket: WebSocket | undefined;
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
    const createSocket = (url: string, protocols: string[]) => {
      this.socket = new WebSocket(url, protocols, { headers });
      return this.socket as unknown as WebSocketLike;
    };
    this.client = await ChatClient.connect(this.url, { createSocket }).catch(() => undefined);
    if (this.client === undefined) {
      this.recorder.connectionFailures += 1;
      return false;
    }
    this.recorder.record('connect', performance.now() - started);
    return true;
  }

  get open(): boolean {
    return this.client?.isOpen ?? false;
  }

  /** Opens a new session (its id for a turn), or reattaches the current one after a reconnect. */
  async openSession(reattach = false): Promise<string | undefined> {
    const { sessionId, resumeToken } = this;
    const existing = reattach && sessionId !== undefined && resumeToken !== undefined;
    const session = await this.client?.openSession(existing ? { sessionId, resumeToken } : {}).catch(() => undefined);
    if (session === undefined) return undefined;
    this.sessionId = session.sessionId;
    this.resumeToken = session.resumeToken;
    return session.sessionId;
  }

  /** Leaves and forgets a session, so the connection can open another and the key's budget is given back. */
  async closeSession(sessionId = this.sessionId): Promise<void> {
    if (sessionId === undefined || !this.open) return;
    await this.client?.closeSession(sessionId, { forget: true }).catch(() => undefined);
    if (sessionId === this.sessionId) this.sessionId = undefined;
  }

  /** One chat turn on a session (the current one by default), measured from send to generation.done. */
  async turn(
    content: string,
    params: GenerationParams,
    hooks: TurnHooks = {},
    sessionId = this.sessionId,
  ): Promise<TurnResult> {
    const client = this.client;
    if (client === undefined || sessionId === undefined) return { error: 'connection_lost' };
    const sentAt = performance.now();
    this.recorder.requests += 1;
    const generation = client.chat(sessionId, content, params);
    generation.onStarted = () => this.recorder.record('queue', performance.now() - sentAt);
    if (hooks.dropAfter !== undefined) client.keepGenerationsOnClose = true;
    const clock = new StreamClock(sentAt);
    let firstAt: number | undefined;
    let lastSeq = 0;
    let dropped = false;
    try {
      for await (const chunk of generation) {
        // A merged frame carries several tokens: its seq past the previous one's.
        const tokens = chunk.seq - lastSeq;
        lastSeq = chunk.seq;
        this.recorder.clock(clock, tokens);
        firstAt ??= performance.now();
        hooks.onTokens?.(chunk.seq, this, generation);
        if (!dropped && hooks.dropAfter !== undefined && chunk.seq >= hooks.dropAfter) {
          dropped = true;
          void this.reconnectAndResume(generation);
        }
      }
      const done = await generation.done;
      this.recorder.record('e2e', performance.now() - sentAt);
      this.recorder.finish(
        done.finish,
        done.usage.completionTokens,
        firstAt === undefined ? 0 : performance.now() - firstAt,
      );
      if (dropped && done.usage.completionTokens === generation.lastSeq) this.recorder.resumes.succeeded += 1;
      return { finish: done.finish, tokens: done.usage.completionTokens };
    } catch (error) {
      const { code, retryAfterMs } = error as ClientError;
      this.recorder.error(code);
      return retryAfterMs === undefined ? { error: code } : { error: code, retryAfterMs };
    }
  }

  /** Cancels and measures the time to the acknowledgement. */
  cancel(generation: ClientGeneration): void {
    const sentAt = performance.now();
    generation.cancel().then(
      () => this.recorder.record('cancelAck', performance.now() - sentAt),
      () => undefined,
    );
  }

  /** Stops reading for `ms`, like a frozen tab. */
  pauseReading(ms: number): void {
    const raw = (this.socket as unknown as { _socket?: Socket } | undefined)?._socket;
    raw?.pause();
    setTimeout(() => raw?.resume(), ms).unref();
  }

  ping(): void {
    this.client?.ping().catch(() => undefined);
  }

  close(): void {
    void this.client?.close();
  }

  /** Drops the connection mid answer, comes back, reattaches and asks for the rest after the last seq held. */
  private async reconnectAndResume(generation: ClientGeneration): Promise<void> {
    this.recorder.resumes.tried += 1;
    this.socket?.terminate();
    const resumed = (await this.connect()) && (await this.openSession(true)) !== undefined && this.client !== undefined;
    if (!resumed || this.client === undefined) {
      generation.fail(new ClientError('connection_closed', 'Could not come back after the drop', true));
      return;
    }
    this.client.adopt(generation);
    await generation.resume().catch((error: ClientError) => generation.fail(error));
  }
}
