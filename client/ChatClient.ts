import type { ClientFrame, GenerationParams } from '../protocol/clientFrames.js';
import { decodeServerFrame } from '../protocol/decodeServerFrame.js';
import type { CancelAck, HistoryMessage, ServerFrame, Welcome } from '../protocol/serverFrames.js';
import { PROTOCOL_VERSION } from '../protocol/version.js';
import { ClientError } from './ClientError.js';
import { ClientGeneration, type GenerationLink } from './ClientGeneration.js';

/** What the client needs of a WebSocket: the browser's, or `ws`'s in Node (see client/node.ts). */
export interface WebSocketLike {
  readonly protocol: string;
  send(data: string): void;
  close(code?: number, reason?: string): void;
  onopen: ((event: unknown) => void) | null;
  onmessage: ((event: { data: unknown }) => void) | null;
  onclose: ((event: { code: number; reason: string }) => void) | null;
  onerror: ((event: unknown) => void) | null;
}

export type SocketFactory = (url: string, protocols: string[]) => WebSocketLike;

export type ConnectOptions = {
  /** A browser ticket from POST /v1/tickets (sent as the `ticket.<t>` subprotocol). */
  ticket?: string;
  /** Subprotocols offered besides `llm-chat.v1` (and the ticket's). */
  protocols?: string[];
  /** Makes the socket; defaults to the global WebSocket (browsers, Node 22). */
  createSocket?: SocketFactory;
  /** Frames no request waits for: `rate_limits`, `server.notice`. */
  onFrame?: (frame: ServerFrame) => void;
};

/** The result of one tool call, for `sendToolResults`. */
export type ToolResultInput = { callId: string; content: string };

export type SessionInfo = { sessionId: string; resumeToken: string; history: HistoryMessage[]; resumed: boolean };
export type CloseInfo = { code: number; reason: string };

type Pending = { resolve: (frame: ServerFrame) => void; reject: (error: ClientError) => void };

/**
 * One connection speaking protocol v1. Replies are routed by request `id` and frames of a
 * generation by `genId`, so any number of sessions and generations run at once on it.
 */
export class ChatClient implements GenerationLink {
  readonly closed: Promise<CloseInfo>;
  /** Set when the generations still running should outlive this socket (a reconnecting client resumes them). */
  keepGenerationsOnClose = false;
  private readonly pending = new Map<string, Pending>();
  /** Resume requests by genId: they settle at the generation's first frame (per token, so a map, not a scan). */
  private readonly resuming = new Map<string, Set<string>>();
  private readonly generations = new Map<string, ClientGeneration>();
  private readonly sending = new Map<string, ClientGeneration>();
  private readonly observers = new Set<(frame: ServerFrame) => void>();
  /** The calls each session's last answer made on this connection, still waiting for results. */
  private readonly waitingCalls = new Map<string, readonly string[]>();
  private requests = 0;
  private isClosed = false;

  private constructor(
    private readonly socket: WebSocketLike,
    readonly welcome: Welcome,
    private readonly onFrame: ((frame: ServerFrame) => void) | undefined,
  ) {
    this.closed = new Promise((resolve) => {
      socket.onclose = (event) => {
        this.isClosed = true;
        this.dropAll();
        resolve({ code: event.code, reason: event.reason });
      };
    });
    socket.onmessage = (event) => {
      const frame = decodeServerFrame(String(event.data));
      if (frame === undefined) return;
      for (const observer of this.observers) observer(frame);
      this.route(frame);
    };
  }

  /** Sees every frame as it arrives, before it is routed (recorders, tests); returns the way to stop. */
  observe(observer: (frame: ServerFrame) => void): () => void {
    this.observers.add(observer);
    return () => this.observers.delete(observer);
  }

  /** Opens the socket and waits for the server's `welcome`; rejects with the refusal when the upgrade fails. */
  static connect(url: string, options: ConnectOptions = {}): Promise<ChatClient> {
    const protocols = [PROTOCOL_VERSION, ...(options.protocols ?? [])];
    if (options.ticket !== undefined) protocols.push(`ticket.${options.ticket}`);
    const socket = (options.createSocket ?? browserSocket)(url, protocols);
    return new Promise((resolve, reject) => {
      socket.onerror = () => undefined;
      socket.onclose = (event) =>
        reject(new ClientError('connection_closed', `Connection refused or closed (${event.code} ${event.reason})`));
      socket.onmessage = (event) => {
        const frame = decodeServerFrame(String(event.data));
        if (frame?.type === 'welcome') resolve(new ChatClient(socket, frame, options.onFrame));
      };
    });
  }

  get isOpen(): boolean {
    return !this.isClosed;
  }

  /** Sends one frame of protocol v1 (typed: nothing else can be sent). */
  send(frame: ClientFrame): void {
    if (!this.isClosed) this.socket.send(JSON.stringify(frame));
  }

  /** A new session, or an existing one reattached with its resume token. */
  async openSession(
    options: { system?: string } | { sessionId: string; resumeToken: string } = {},
  ): Promise<SessionInfo> {
    const reply = await this.request('session.opened', { type: 'session.open', id: this.nextId(), ...options });
    return {
      sessionId: reply.sessionId,
      resumeToken: reply.resumeToken,
      history: reply.history,
      resumed: reply.resumed,
    };
  }

  /** Leaves a session on this connection; with `forget`, deletes it. */
  async closeSession(sessionId: string, { forget = false } = {}): Promise<void> {
    await this.request('session.closed', { type: 'session.close', id: this.nextId(), sessionId, forget });
  }

  /** Sends a message; the generation streams its tokens and settles `done`. */
  chat(sessionId: string, content: string, params?: GenerationParams): ClientGeneration {
    const generation = new ClientGeneration(sessionId, params, this);
    const id = this.nextId();
    this.sending.set(id, generation);
    this.send({ type: 'chat.send', id, sessionId, content, ...(params === undefined ? {} : { params }) });
    if (this.isClosed) generation.fail(closedError());
    return generation;
  }

  /**
   * Answers the tool calls of an answer that ended with finish 'tool_calls' (its `toolCalls`):
   * one `tool.result` frame each. The server then runs the next generation of the turn, returned
   * here; it fails with the refusal of any of the results.
   */
  sendToolResults(sessionId: string, results: readonly ToolResultInput[]): ClientGeneration {
    const generation = new ClientGeneration(sessionId, undefined, this);
    if (results.length === 0) {
      generation.fail(new ClientError('bad_frame', 'No tool results to send'));
      return generation;
    }
    // The server waits for every call's result before it runs the next generation: a partial set
    // would leave this one waiting for a start that never comes. (Calls made on another connection
    // are not known here, and an id that is no call's is the server's to refuse: both go as they are.)
    const waiting = this.waitingCalls.get(sessionId) ?? [];
    const given = new Set(results.map((result) => result.callId));
    const missing = waiting.filter((callId) => !given.has(callId));
    if (missing.length > 0 && [...given].every((callId) => waiting.includes(callId))) {
      const message = `Send every call's result in one sendToolResults: missing ${missing.join(', ')}`;
      generation.fail(new ClientError('bad_frame', message));
      return generation;
    }
    // Every frame's id leads to this generation: a refusal of any fails it; the last one's queues it.
    const ids = results.map(() => this.nextId());
    for (const id of ids) this.sending.set(id, generation);
    const forget = () => {
      for (const id of ids) this.sending.delete(id);
    };
    generation.queued.then(forget, forget);
    for (const [index, { callId, content }] of results.entries())
      this.send({ type: 'tool.result', id: ids[index] as string, sessionId, callId, content });
    if (this.isClosed) generation.fail(closedError());
    return generation;
  }

  cancel(genId: string): Promise<CancelAck> {
    return this.request('cancel.ack', { type: 'generation.cancel', id: this.nextId(), genId });
  }

  /** Asks for a generation's frames after `afterSeq`; resolves at its first frame, rejects with a refusal. */
  resume(genId: string, afterSeq: number): Promise<void> {
    const id = this.nextId();
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve: () => resolve(), reject });
      this.resuming.set(genId, (this.resuming.get(genId) ?? new Set()).add(id));
      this.send({ type: 'generation.resume', id, genId, afterSeq });
    });
  }

  /** Routes a generation from another (closed) connection here, so that it can resume. */
  adopt(generation: ClientGeneration): void {
    if (generation.genId !== undefined) this.generations.set(generation.genId, generation);
    generation.link = this;
  }

  /** Round trip in milliseconds. */
  async ping(): Promise<number> {
    const sentAt = performance.now();
    await this.request('pong', { type: 'ping', id: this.nextId() });
    return performance.now() - sentAt;
  }

  close(code = 1000, reason = ''): Promise<CloseInfo> {
    this.socket.close(code, reason);
    return this.closed;
  }

  /** Generations this connection streams that have not ended. */
  get running(): ClientGeneration[] {
    return [...this.generations.values()].filter((generation) => !generation.finished);
  }

  private request<T extends ServerFrame['type']>(
    expected: T,
    frame: ClientFrame & { id: string },
  ): Promise<Extract<ServerFrame, { type: T }>> {
    return new Promise((resolve, reject) => {
      if (this.isClosed) return reject(closedError());
      this.pending.set(frame.id, {
        resolve: (reply) =>
          reply.type === expected
            ? resolve(reply as Extract<ServerFrame, { type: T }>)
            : reject(new ClientError('internal', `Expected ${expected}, got ${reply.type}`)),
        reject,
      });
      this.send(frame);
    });
  }

  private route(frame: ServerFrame): void {
    const id = 'id' in frame ? frame.id : undefined;
    const sending = id === undefined ? undefined : this.sending.get(id);
    if (sending !== undefined) {
      this.sending.delete(id as string);
      if (frame.type === 'error') sending.fail(ClientError.of(frame));
      else if (frame.type === 'generation.queued') this.generations.set(frame.genId, sending);
    }
    const genId = 'genId' in frame ? frame.genId : undefined;
    const generation = genId === undefined || frame.type === 'error' ? undefined : this.generations.get(genId);
    if (generation !== undefined && genId !== undefined) {
      generation.receive(frame);
      this.settleResumes(genId, frame);
      if (frame.type === 'generation.done') {
        this.generations.delete(genId);
        const calls = frame.finish === 'tool_calls' ? generation.toolCalls.map((call) => call.callId) : [];
        if (calls.length > 0) this.waitingCalls.set(generation.sessionId, calls);
        else this.waitingCalls.delete(generation.sessionId);
      }
    }
    const pending = id === undefined ? undefined : this.pending.get(id);
    if (pending !== undefined) {
      this.pending.delete(id as string);
      if (frame.type === 'error') pending.reject(ClientError.of(frame));
      else pending.resolve(frame);
    }
    if (sending === undefined && generation === undefined && pending === undefined) this.onFrame?.(frame);
  }

  private settleResumes(genId: string, frame: ServerFrame): void {
    const ids = this.resuming.get(genId);
    if (ids === undefined) return;
    this.resuming.delete(genId);
    for (const id of ids) {
      this.pending.get(id)?.resolve(frame);
      this.pending.delete(id);
    }
  }

  private dropAll(): void {
    for (const pending of this.pending.values()) pending.reject(closedError());
    this.pending.clear();
    this.resuming.clear();
    for (const generation of this.sending.values()) generation.fail(closedError());
    this.sending.clear();
    if (!this.keepGenerationsOnClose)
      for (const generation of this.generations.values()) generation.fail(closedError());
  }

  private nextId(): string {
    this.requests += 1;
    return `r${this.requests}`;
  }
}

function closedError(): ClientError {
  return new ClientError('connection_closed', 'The connection is closed', true);
}

function browserSocket(url: string, protocols: string[]): WebSocketLike {
  const WebSocketClass = (globalThis as { WebSocket?: new (url: string, protocols: string[]) => WebSocketLike })
    .WebSocket;
  if (WebSocketClass === undefined) throw new Error('No global WebSocket here: pass createSocket (client/node.ts)');
  return new WebSocketClass(url, protocols);
}
