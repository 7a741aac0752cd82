import WebSocket from 'ws';
import { PROTOCOL_VERSION, type ServerFrame } from '../protocol/index.js';
import { measureOf, type RunMeasure, StreamClock } from '../tooling/latency.js';

export type ServerRunOptions = { wsUrl: string; streams: number; prompt: string; maxTokens: number; seed: number };

/**
 * A lean client for measuring: one JSON.parse per frame and nothing kept, so that on a small
 * machine the client steals as little CPU from the server as it can.
 */
export class BenchClient {
  private handler: (frame: ServerFrame) => void = () => {};

  private constructor(private readonly socket: WebSocket) {
    socket.on('message', (data: Buffer) => this.handler(JSON.parse(data.toString()) as ServerFrame));
  }

  static async connect(url: string): Promise<BenchClient> {
    const socket = new WebSocket(url, [PROTOCOL_VERSION]);
    const client = new BenchClient(socket);
    await client.request(
      () => undefined,
      (frame) => frame.type === 'welcome',
    );
    return client;
  }

  /** Sends `frame` (if any) and resolves with the first frame `until` accepts; `onFrame` sees all. */
  request(
    send: () => object | undefined,
    until: (frame: ServerFrame) => boolean,
    onFrame: (frame: ServerFrame) => void = () => {},
  ): Promise<ServerFrame> {
    return new Promise((resolve) => {
      this.handler = (frame) => {
        onFrame(frame);
        if (until(frame)) resolve(frame);
      };
      const frame = send();
      if (frame !== undefined) this.socket.send(JSON.stringify(frame));
    });
  }

  async openSession(): Promise<string> {
    const opened = await this.request(
      () => ({ type: 'session.open', id: 'open' }),
      (frame) => frame.type === 'session.opened',
    );
    return opened.type === 'session.opened' ? opened.sessionId : '';
  }

  close(): void {
    this.socket.close();
  }
}

/** `streams` WebSocket clients, each on its own connection and session, sending at once. */
export async function runServerClients(options: ServerRunOptions, repeats: number): Promise<RunMeasure[]> {
  const clients = await Promise.all(Array.from({ length: options.streams }, () => BenchClient.connect(options.wsUrl)));
  const runs: RunMeasure[] = [];
  try {
    for (let repeat = -1; repeat < repeats; repeat++) {
      const sessions = await Promise.all(clients.map((client) => client.openSession()));
      const startedAt = performance.now();
      const clocks = clients.map(() => new StreamClock(startedAt));
      await Promise.all(
        clients.map((client, index) => {
          let lastSeq = 0;
          const onFrame = (frame: ServerFrame) => {
            if (frame.type !== 'token') return;
            clocks[index]?.chunk(frame.seq - lastSeq);
            lastSeq = frame.seq;
          };
          const chat = {
            type: 'chat.send',
            id: `bench-${repeat}`,
            sessionId: sessions[index],
            content: options.prompt,
            params: { maxTokens: options.maxTokens, temperature: 0, seed: options.seed },
          };
          return client.request(
            () => chat,
            (frame) => frame.type === 'generation.done' || frame.type === 'error',
            onFrame,
          );
        }),
      );
      // The first round warms up allocations and is not counted.
      if (repeat >= 0) runs.push(measureOf(clocks, performance.now() - startedAt));
    }
  } finally {
    for (const client of clients) client.close();
  }
  return runs;
}

/** Cancel-to-ack latency: start `streams` generations at once, cancel each after its 20th token. */
export async function measureCancelAcks(wsUrl: string, streams: number): Promise<number[]> {
  const clients = await Promise.all(Array.from({ length: streams }, () => BenchClient.connect(wsUrl)));
  const latencies = await Promise.all(
    clients.map(async (client) => {
      const sessionId = await client.openSession();
      const params = { maxTokens: 2000, temperature: 0 };
      const chat = { type: 'chat.send', id: 'long', sessionId, content: 'Once upon a time', params };
      const reached = await client.request(
        () => chat,
        (frame) =>
          (frame.type === 'token' && frame.seq >= 20) || frame.type === 'generation.done' || frame.type === 'error',
      );
      if (reached.type !== 'token') return Number.NaN;
      const sentAt = performance.now();
      let ackedAt = Number.NaN;
      const cancel = { type: 'generation.cancel', id: 'stop', genId: reached.genId };
      // The ack and the done frame may arrive in one read: wait for done, timing the ack on the way.
      await client.request(
        () => cancel,
        (frame) => frame.type === 'generation.done',
        (frame) => {
          if (frame.type === 'cancel.ack') ackedAt = performance.now();
        },
      );
      return ackedAt - sentAt;
    }),
  );
  for (const client of clients) client.close();
  return latencies.filter((latency) => !Number.isNaN(latency));
}
