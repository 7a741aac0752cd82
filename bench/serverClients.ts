import { ChatClient } from '../client/ChatClient.js';
import { nodeSockets } from '../client/node.js';
import { measureOf, type RunMeasure, StreamClock } from '../tooling/latency.js';

export type ServerRunOptions = { wsUrl: string; streams: number; prompt: string; maxTokens: number; seed: number };

const connect = (url: string) => ChatClient.connect(url, { createSocket: nodeSockets() });

/** `streams` clients of the project's client, each on its own connection and session, sending at once. */
/** `onWarm` is called after the warm-up round, before the measured ones. */
export async function runServerClients(
  options: ServerRunOptions,
  repeats: number,
  onWarm?: () => void,
): Promise<RunMeasure[]> {
  const clients = await Promise.all(Array.from({ length: options.streams }, () => connect(options.wsUrl)));
  const params = { maxTokens: options.maxTokens, temperature: 0, seed: options.seed };
  const runs: RunMeasure[] = [];
  try {
    for (let repeat = -1; repeat < repeats; repeat++) {
      const sessions = await Promise.all(clients.map((client) => client.openSession()));
      if (repeat === 0) onWarm?.();
      const startedAt = performance.now();
      const clocks = clients.map(() => new StreamClock(startedAt));
      await Promise.all(
        clients.map(async (client, index) => {
          // The first round, a warm-up, is short.
          const maxTokens = repeat < 0 ? Math.min(8, params.maxTokens) : params.maxTokens;
          const generation = client.chat(sessions[index]?.sessionId ?? '', options.prompt, { ...params, maxTokens });
          let lastSeq = 0;
          for await (const chunk of generation) {
            clocks[index]?.chunk(chunk.seq - lastSeq);
            lastSeq = chunk.seq;
          }
        }),
      );
      // The first round warms up allocations and is not counted.
      if (repeat >= 0) runs.push(measureOf(clocks, performance.now() - startedAt));
      await Promise.all(
        clients.map((client, index) => client.closeSession(sessions[index]?.sessionId ?? '', { forget: true })),
      );
    }
  } finally {
    await Promise.all(clients.map((client) => client.close()));
  }
  return runs;
}

/** Cancel-to-ack latency: start `streams` generations at once, cancel each after its 20th token. */
export async function measureCancelAcks(wsUrl: string, streams: number): Promise<number[]> {
  const clients = await Promise.all(Array.from({ length: streams }, () => connect(wsUrl)));
  const latencies = await Promise.all(
    clients.map(async (client) => {
      const { sessionId } = await client.openSession();
      const generation = client.chat(sessionId, 'Once upon a time', { maxTokens: 2000, temperature: 0 });
      for await (const chunk of generation) if (chunk.seq >= 20) break;
      if (generation.finished) return Number.NaN;
      const sentAt = performance.now();
      await generation.cancel();
      return performance.now() - sentAt;
    }),
  );
  await Promise.all(clients.map((client) => client.close()));
  return latencies.filter((latency) => !Number.isNaN(latency));
}
