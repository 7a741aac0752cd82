import WebSocket from 'ws';
import { PROTOCOL_VERSION, type ServerFrame, type Welcome } from '../../protocol/index.js';

type Waiter = { match: (frame: ServerFrame) => boolean; resolve: (frame: ServerFrame) => void };
export type CloseEvent = { code: number; reason: string };

const WAIT_MS = 15_000;

/** A real `ws` client that records every frame and lets a test wait for the one it expects. */
export class TestClient {
  readonly frames: ServerFrame[] = [];
  /** When each of `frames` arrived (performance.now()). */
  readonly times: number[] = [];
  readonly closed: Promise<CloseEvent>;
  private readonly untaken: ServerFrame[] = [];
  private waiters: Waiter[] = [];
  welcome!: Welcome;

  private constructor(readonly socket: WebSocket) {
    this.closed = new Promise((resolve) => {
      socket.on('close', (code, reason) => resolve({ code, reason: reason.toString() }));
    });
    socket.on('message', (data) => this.receive(JSON.parse(data.toString()) as ServerFrame));
  }

  static async connect(
    url: string,
    protocols: string[] = [PROTOCOL_VERSION],
    options: WebSocket.ClientOptions = {},
  ): Promise<TestClient> {
    const socket = new WebSocket(url, protocols, options);
    const client = new TestClient(socket);
    await new Promise<void>((resolve, reject) => {
      socket.once('open', () => resolve());
      socket.once('error', reject);
    });
    client.welcome = (await client.next('welcome')) as Welcome;
    return client;
  }

  send(frame: object): void {
    this.socket.send(JSON.stringify(frame));
  }

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
    this.socket.close();
    return this.closed;
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
