import WebSocket from 'ws';
import { ChatClient, type WebSocketLike } from '../../client/ChatClient.js';
import { type ClientFrame, PROTOCOL_VERSION, type ServerFrame, type Welcome } from '../../protocol/index.js';

type Waiter = { match: (frame: ServerFrame) => boolean; resolve: (frame: ServerFrame) => void };
export type CloseEvent = { code: number; reason: string };

const WAIT_MS = 15_000;

/**
 * The project's client (`client`) with a recorder on top, for tests that assert on the wire:
 * every frame is kept, with its arrival time, and a test waits for the one it expects. The raw
 * `socket` stays reachable for what a well-behaved client never does (bad frames, a cut).
 */
export class TestClient {
  readonly frames: ServerFrame[] = [];
  /** When each of `frames` arrived (performance.now()). */
  readonly times: number[] = [];
  readonly closed: Promise<CloseEvent>;
  private readonly untaken: ServerFrame[] = [];
  private waiters: Waiter[] = [];
  readonly welcome: Welcome;

  private constructor(
    readonly client: ChatClient,
    readonly socket: WebSocket,
  ) {
    this.welcome = client.welcome;
    this.receive(client.welcome);
    client.observe((frame) => this.receive(frame));
    this.closed = client.closed;
  }

  static async connect(
    url: string,
    protocols: string[] = [PROTOCOL_VERSION],
    options: WebSocket.ClientOptions = {},
  ): Promise<TestClient> {
    let socket: WebSocket | undefined;
    const client = await ChatClient.connect(url, {
      protocols: protocols.filter((protocol) => protocol !== PROTOCOL_VERSION),
      createSocket: (target, offered) => {
        socket = new WebSocket(target, offered, options);
        return socket as unknown as WebSocketLike;
      },
    });
    return new TestClient(client, socket as WebSocket);
  }

  /** A frame of protocol v1, through the client. */
  send(frame: ClientFrame): void {
    this.client.send(frame);
  }

  /** Anything at all, as a text (or binary) frame: for tests of what the server refuses. */
  sendRaw(data: string | Buffer, binary = false): void {
    this.socket.send(data, { binary });
  }

  /** The next not yet taken frame of `type` (and matching `where`), waiting for it if needed. */
  next<T extends ServerFrame['type']>(
    type: T,
    where: (frame: Extract<ServerFrame, { type: T }>) => boolean = () => true,
    timeoutMs = WAIT_MS,
  ): Promise<Extract<ServerFrame, { type: T }>> {
    const match = (frame: ServerFrame) => frame.type === type && where(frame as Extract<ServerFrame, { type: T }>);
    const index = this.untaken.findIndex(match);
    if (index !== -1) return Promise.resolve(this.untaken.splice(index, 1)[0] as Extract<ServerFrame, { type: T }>);
    return new Promise((resolve, reject) => {
      const waiter: Waiter = { match, resolve: (frame) => resolve(frame as Extract<ServerFrame, { type: T }>) };
      this.waiters.push(waiter);
      setTimeout(() => {
        if (!this.waiters.includes(waiter)) return;
        this.waiters = this.waiters.filter((w) => w !== waiter);
        reject(new Error(`No "${type}" frame within ${timeoutMs} ms; got: ${this.summary()}`));
      }, timeoutMs);
    });
  }

  close(): Promise<CloseEvent> {
    return this.client.close();
  }

  private receive(frame: ServerFrame): void {
    this.frames.push(frame);
    this.times.push(performance.now());
    const waiter = this.waiters.find((w) => w.match(frame));
    if (waiter === undefined) {
      this.untaken.push(frame);
      return;
    }
    this.waiters = this.waiters.filter((w) => w !== waiter);
    waiter.resolve(frame);
  }

  private summary(): string {
    return (
      this.frames
        .slice(-8)
        .map((f) => JSON.stringify(f).slice(0, 160))
        .join(' | ') || 'nothing'
    );
  }
}
