import { getLlama, LlamaChat, LlamaLogLevel, resolveChatWrapper } from 'node-llama-cpp';
import { measureOf, type RunMeasure, StreamClock } from '../tooling/latency.js';

export type RawOptions = {
  modelPath: string;
  threads: number;
  streams: number;
  prompt: string;
  maxTokens: number;
  seed: number;
};

/** node-llama-cpp alone: `streams` generations on as many sequences of one context, at once. */
export async function runRawEngine(options: RawOptions, repeats: number): Promise<RunMeasure[]> {
  const llama = await getLlama({ logLevel: LlamaLogLevel.error });
  const model = await llama.loadModel({ modelPath: options.modelPath });
  const context = await model.createContext({
    sequences: options.streams,
    contextSize: 2048,
    threads: options.threads,
  });
  const chatWrapper = resolveChatWrapper(model);
  const sequences = Array.from({ length: options.streams }, () => context.getSequence());
  const runs: RunMeasure[] = [];
  try {
    for (let repeat = -1; repeat < repeats; repeat++) {
      await Promise.all(sequences.map((sequence) => sequence.clearHistory()));
      const startedAt = performance.now();
      const clocks = sequences.map(() => new StreamClock(startedAt));
      await Promise.all(
        sequences.map((contextSequence, index) => {
          const chat = new LlamaChat({ contextSequence, chatWrapper });
          return chat
            .generateResponse(
              [
                { type: 'user', text: options.prompt },
                { type: 'model', response: [] },
              ],
              {
                maxTokens: options.maxTokens,
                temperature: 0,
                seed: options.seed,
                onResponseChunk: (chunk) => clocks[index]?.chunk(chunk.tokens.length),
              },
            )
            .finally(() => chat.dispose({ disposeSequence: false }));
        }),
      );
      // The first round warms up allocations and is not counted.
      if (repeat >= 0) runs.push(measureOf(clocks, performance.now() - startedAt));
    }
  } finally {
    await context.dispose();
    await model.dispose();
    await llama.dispose();
  }
  return runs;
}
