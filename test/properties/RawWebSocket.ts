import { createHash, randomBytes } from 'node:crypto';
import { connect, type Socket } from 'node:net';
import { setTimeout as delay } from 'node:timers/promises';
import { PROTOCOL_VERSION, ServerFrame, WS_PATH } from '../../protocol/index.js';

/**
 * How to put one text message on the wire: split into WebSocket fragments (a text frame and
 * continuation frames, optionally with a ping control frame between them, as RFC 6455 allows),
 * then the bytes written to TCP in pieces with pauses between them.
 */
export type WirePlan = { fragments: number; pingBetween: boolean; tcpPieces: number; pauseMs: number };
export const WHOLE: WirePlan = { fragments: 1, pingBetween: false, tcpPieces: 1, pauseMs: 0 };

const OPCODE = { continuation: 0x0, text: 0x1, binary: 0x2, close: 0x8, ping: 0x9, pong: 0xa } as const;
const GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11';

/**
 * A WebSocket client written on a bare TCP socket, for what `ws` does not let a test do: write a
 * frame's bytes in pieces, and stop reading (TCP backpressure) for a while. It decodes every
 * server frame against the protocol schema and records what is wrong in `violations`.
 */
export class RawWebSocket {
  readonly frames: ServerFrame[] = [];
  readonly violations: string[] = [];
  readonly closed: Promise<number>;
  private input: Buffer = Buffer.alloc(0);
  private message: Buffer[] = [];
  private closeCode: number | undefined;
  private readonly waiters = new Set<() => void>();

  private constructor(
    private readonly socket: Socket,
    rest: Buffer,
  ) {
    this.closed = new Promise((resolve) =>
      socket.once('close', () => {
        this.closeCode ??= 1006;
        for (const waiter of [...this.waiters]) waiter();
        resolve(this.closeCode);
      }),
    );
    socket.on('data', (chunk: Buffer) => this.receive(chunk));
    socket.on('error', () => {});
    socket.setNoDelay(true);
    if (rest.length > 0) this.receive(rest);
  }

  /** Upgrades a TCP connection to protocol v1 and waits for the welcome. */
  static async connect(port: number): Promise<RawWebSocket> {
    const socket = connect(port, '127.0.0.1');
    await new Promise<void>((resolve, reject) => {
      socket.once('connect', resolve);
      socket.once('error', reject);
    });
    const key = randomBytes(16).toString('base64');
    socket.write(
      [
        `GET ${WS_PATH} HTTP/1.1`,
        `Host: 127.0.0.1:${port}`,
        'Upgrade: websocket',
        'Connection: Upgrade',
        `Sec-WebSocket-Key: ${key}`,
        'Sec-WebSocket-Version: 13',
        `Sec-WebSocket-Protocol: ${PROTOCOL_VERSION}`,
        '',
        '',
      ].join('\r\n'),
    );
    const { head, rest } = await readHead(socket);
    const accept = createHash('sha1')
      .update(key + GUID)
      .digest('base64');
    if (!head.startsWith('HTTP/1.1 101') || !head.includes(accept) || !head.toLowerCase().includes(PROTOCOL_VERSION)) {
      socket.destroy();
      throw new Error(`The upgrade was refused: ${head.slice(0, 300)}`);
    }
    const client = new RawWebSocket(socket, rest);
    await client.waitFor(() => client.frames.find((frame) => frame.type === 'welcome'), 'welcome');
    return client;
  }

  /** Sends one text message as `plan` says. */
  async send(frame: object, plan: WirePlan = WHOLE): Promise<void> {
    const payload = Buffer.from(JSON.stringify(frame));
    const bytes = Buffer.concat(fragment(payload, plan));
    const pieces = Math.max(1, Math.min(plan.tcpPieces, bytes.length));
    for (let i = 0; i < pieces; i++) {
      const start = Math.floor((bytes.length * i) / pieces);
      const end = Math.floor((bytes.length * (i + 1)) / pieces);
      this.socket.write(bytes.subarray(start, end));
      if (i < pieces - 1 && plan.pauseMs > 0) await delay(plan.pauseMs);
    }
  }

  /**
   * Resolves with what `find` returns once it returns something, checking again after every frame
   * that arrives; rejects after `timeoutMs`, or when the connection closes first.
   */
  waitFor<T>(find: () => T | undefined, what: string, timeoutMs = 15_000): Promise<T> {
    const found = find();
    if (found !== undefined) return Promise.resolve(found);
    return new Promise((resolve, reject) => {
      const fail = (why: string) => {
        const last = this.frames.slice(-5).map((f) => JSON.stringify(f).slice(0, 150));
        reject(new Error(`No ${what} ${why}; the last frames: ${last.join(' | ') || 'none'}`));
      };
      const waiter = () => {
        const value = find();
        if (value !== undefined) {
          this.waiters.delete(waiter);
          clearTimeout(timer);
          resolve(value);
        } else if (this.closeCode !== undefined || this.socket.destroyed) {
          this.waiters.delete(waiter);
          clearTimeout(timer);
          fail(`before the connection closed (${this.closeCode ?? 1006})`);
        }
      };
      const timer = setTimeout(() => {
        this.waiters.delete(waiter);
        fail(`within ${timeoutMs} ms`);
      }, timeoutMs);
      this.waiters.add(waiter);
    });
  }

  /** The frames that answer request `id` (those that echo it). */
  answersTo(id: string): ServerFrame[] {
    return this.frames.filter((frame) => 'id' in frame && frame.id === id);
  }

  /** Waits for the first frame that echoes `id`. */
  answer(id: string, timeoutMs = 15_000): Promise<ServerFrame> {
    return this.waitFor(() => this.answersTo(id)[0], `answer to ${id}`, timeoutMs);
  }

  /** Stops reading from the socket: what the server sends waits in its buffers (TCP backpressure). */
  pause(): void {
    this.socket.pause();
  }

  resume(): void {
    this.socket.resume();
  }

  /** Cuts the connection without a close frame (what a lost network looks like). */
  terminate(): Promise<number> {
    this.socket.destroy();
    return this.closed;
  }

  /** The closing handshake: a close frame with 1000, then the server's close frame. */
  close(): Promise<number> {
    const code = Buffer.alloc(2);
    code.writeUInt16BE(1000);
    this.socket.write(encodeFrame(OPCODE.close, code, true));
    return this.closed;
  }

  private receive(chunk: Buffer): void {
    this.input = this.input.length === 0 ? chunk : Buffer.concat([this.input, chunk]);
    for (;;) {
      const frame = decodeFrame(this.input);
      if (frame === undefined) return;
      this.input = this.input.subarray(frame.length);
      if (frame.masked) this.violations.push('a masked frame from the server (RFC 6455 5.1 forbids it)');
      this.handle(frame.opcode, frame.fin, frame.payload);
    }
  }

  private handle(opcode: number, fin: boolean, payload: Buffer): void {
    switch (opcode) {
      case OPCODE.text:
      case OPCODE.continuation:
        this.message.push(payload);
        if (fin) {
          const text = Buffer.concat(this.message).toString('utf8');
          this.message = [];
          this.deliver(text);
        }
        return;
      case OPCODE.ping:
        this.socket.write(encodeFrame(OPCODE.pong, payload, true));
        return;
      case OPCODE.pong:
        return;
      case OPCODE.close:
        this.closeCode = payload.length >= 2 ? payload.readUInt16BE(0) : 1005;
        this.socket.end(encodeFrame(OPCODE.close, payload.subarray(0, 2), true));
        return;
      default:
        this.violations.push(`a frame with opcode ${opcode} from the server`);
    }
  }

  private deliver(text: string): void {
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch {
      this.violations.push(`a frame that is not JSON: ${text.slice(0, 200)}`);
      return;
    }
    const decoded = ServerFrame.safeParse(value);
    if (!decoded.success) {
      this.violations.push(`a frame outside the server frame schema: ${text.slice(0, 200)}`);
      return;
    }
    this.frames.push(decoded.data);
    for (const waiter of [...this.waiters]) waiter();
  }
}

/** The payload as a text frame and continuation frames, with a ping between fragments if asked. */
function fragment(payload: Buffer, plan: WirePlan): Buffer[] {
  const count = Math.max(1, Math.min(plan.fragments, payload.length));
  const frames: Buffer[] = [];
  for (let i = 0; i < count; i++) {
    const start = Math.floor((payload.length * i) / count);
    const end = Math.floor((payload.length * (i + 1)) / count);
    frames.push(
      encodeFrame(i === 0 ? OPCODE.text : OPCODE.continuation, payload.subarray(start, end), i === count - 1),
    );
    if (plan.pingBetween && i < count - 1) frames.push(encodeFrame(OPCODE.ping, Buffer.from('between'), true));
  }
  return frames;
}

/** A client frame: always masked (RFC 6455 5.3). */
function encodeFrame(opcode: number, payload: Buffer, fin: boolean): Buffer {
  const length = payload.length;
  const header = length < 126 ? Buffer.alloc(2) : length < 65_536 ? Buffer.alloc(4) : Buffer.alloc(10);
  header[0] = (fin ? 0x80 : 0) | opcode;
  if (length < 126) header[1] = 0x80 | length;
  else if (length < 65_536) {
    header[1] = 0x80 | 126;
    header.writeUInt16BE(length, 2);
  } else {
    header[1] = 0x80 | 127;
    header.writeBigUInt64BE(BigInt(length), 2);
  }
  const mask = randomBytes(4);
  const masked = Buffer.alloc(length);
  for (let i = 0; i < length; i++) masked[i] = (payload[i] as number) ^ (mask[i % 4] as number);
  return Buffer.concat([header, mask, masked]);
}

/** One server frame from the front of `input`, or undefined until all of it has arrived. */
type DecodedFrame = { opcode: number; fin: boolean; masked: boolean; payload: Buffer; length: number };

function decodeFrame(input: Buffer): DecodedFrame | undefined {
  if (input.length < 2) return undefined;
  const first = input[0] as number;
  const second = input[1] as number;
  let length = second & 0x7f;
  let offset = 2;
  if (length === 126) {
    if (input.length < 4) return undefined;
    length = input.readUInt16BE(2);
    offset = 4;
  } else if (length === 127) {
    if (input.length < 10) return undefined;
    length = Number(input.readBigUInt64BE(2));
    offset = 10;
  }
  const masked = (second & 0x80) !== 0;
  if (masked) offset += 4;
  if (input.length < offset + length) return undefined;
  const payload = input.subarray(offset, offset + length);
  return { opcode: first & 0x0f, fin: (first & 0x80) !== 0, masked, payload, length: offset + length };
}

/** Reads the HTTP response head of the upgrade; what follows it is already WebSocket frames. */
function readHead(socket: Socket): Promise<{ head: string; rest: Buffer }> {
  return new Promise((resolve, reject) => {
    let buffered = Buffer.alloc(0);
    const onData = (chunk: Buffer) => {
      buffered = Buffer.concat([buffered, chunk]);
      const end = buffered.indexOf('\r\n\r\n');
      if (end === -1) return;
      socket.off('data', onData);
      socket.off('close', onClose);
      resolve({ head: buffered.subarray(0, end).toString('latin1'), rest: buffered.subarray(end + 4) });
    };
    const onClose = () =>
      reject(new Error(`The connection closed during the upgrade: ${buffered.toString('latin1').slice(0, 300)}`));
    socket.on('data', onData);
    socket.once('close', onClose);
  });
}
