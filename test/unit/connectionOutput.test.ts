import { describe, expect, it } from 'vitest';
import { CloseCodes, type ServerFrame, type Token } from '../../protocol/index.js';
import type { Identity } from '../../server/auth/Identity.js';
import { Connection } from '../../server/gateway/Connection.js';
import type { SendStatus, SocketHandle } from '../../server/transport/Transport.js';

/** A socket whose backlog the test sets, recording what is written and how it is closed. */
class BackloggedSocket implements SocketHandle<Identity> {
  readonly remoteAddress = '127.0.0.1';
  readonly attachment: Identity = { keyName: undefined, ownerKey: 'open', clientKey: 'c' };
  readonly written: ServerFrame[] = [];
  backlog = 0;
  closedWith: number | undefined;
  get closed() {
    return this.closedWith !== undefined;
  }
  send(text: string): SendStatus {
    this.written.push(JSON.parse(text) as ServerFrame);
    return this.backlog > 0 ? 'buffered' : 'sent';
  }
  bufferedBytes() {
    return this.backlog;
  }
  close(code: number) {
    this.closedWith = code;
  }
}

const token = (genId: string, seq: number, text: string, channel: Token['channel'] = 'content'): Token => ({
  type: 'token',
  genId,
  seq,
  text,
  channel,
});

function connection(socket: BackloggedSocket, maxBufferedBytes = 1_000_000) {
  return new Connection('c1', socket, socket.attachment, { coalesceAboveBytes: 1000, maxBufferedBytes });
}

describe('Connection output to a slow reader', () => {
  it('sends token frames one by one while the client keeps up', () => {
    const socket = new BackloggedSocket();
    const conn = connection(socket);
    conn.send(token('g', 1, 'a'));
    conn.send(token('g', 2, 'b'));
    expect(socket.written).toEqual([token('g', 1, 'a'), token('g', 2, 'b')]);
  });

  it('merges held tokens per generation and channel, keeping the last seq, and sends them on drain', () => {
    const socket = new BackloggedSocket();
    const conn = connection(socket);
    socket.backlog = 5000;
    for (const [seq, text] of [
      [1, 'Once'],
      [2, ' upon'],
      [3, ' a'],
      [4, ' time'],
    ] as const)
      conn.send(token('g', seq, text));
    conn.send(token('h', 1, 'x'));
    conn.send(token('g', 5, 'hmm', 'reasoning'));
    // The first write reported backpressure: the rest wait, merged.
    expect(socket.written).toEqual([token('g', 1, 'Once')]);
    socket.backlog = 0;
    conn.flush();
    expect(socket.written).toEqual([
      token('g', 1, 'Once'),
      token('g', 4, ' upon a time'),
      token('h', 1, 'x'),
      token('g', 5, 'hmm', 'reasoning'),
    ]);
  });

  it('lets no other frame overtake the tokens held before it', () => {
    const socket = new BackloggedSocket();
    const conn = connection(socket);
    socket.backlog = 5000;
    conn.send(token('g', 1, 'a'));
    conn.send(token('g', 2, 'b'));
    conn.send({ type: 'pong', id: 'p' });
    expect(socket.written.map((frame) => frame.type)).toEqual(['token', 'token', 'pong']);
  });

  it('never asks the socket for its backlog while writes go straight out', () => {
    const socket = new BackloggedSocket();
    let asked = 0;
    const bufferedBytes = socket.bufferedBytes.bind(socket);
    socket.bufferedBytes = () => {
      asked += 1;
      return bufferedBytes();
    };
    const conn = connection(socket);
    for (let seq = 1; seq <= 50; seq++) conn.send(token('g', seq, 'w'));
    expect(asked).toBe(0);
  });

  it('closes as too slow when the socket drops a frame', () => {
    const socket = new BackloggedSocket();
    socket.send = () => 'dropped';
    const conn = connection(socket);
    conn.send(token('g', 1, 'a'));
    expect(socket.closedWith).toBe(CloseCodes.SlowConsumer.code);
    expect(conn.tooSlow).toBe(true);
  });

  it('closes with 4429 once what waits for the client passes maxBufferedBytes', () => {
    const socket = new BackloggedSocket();
    const conn = connection(socket, 10_000);
    socket.backlog = 9_000;
    for (let seq = 1; seq <= 200 && socket.closedWith === undefined; seq++) conn.send(token('g', seq, 'word '));
    expect(socket.closedWith).toBe(CloseCodes.SlowConsumer.code);
    expect(conn.tooSlow).toBe(true);
  });
});
