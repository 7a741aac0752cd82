import { getLlama, LlamaChat, LlamaLogLevel, resolveChatWrapper } from 'node-llama-cpp';
import { DecodeBatchGate } from '../server/engine/DecodeBatchGate.js';
import { wantsFlashAttention } from '../server/engine/flashAttention.js';
import { measureOf, type RunMeasure, StreamClock } from '../tooling/latency.js';

export type RawOptions = {
  modelPath: string;
  threads: number;
  streams: number;
  prompt: string;
  maxTokens: number;
  seed: number;
};

/**
 * node-llama-cpp alone: `streams` generations on as many sequences of one context, at once, with
 * the engine's batching (the binary it picks, flash attention by model size, DecodeBatchGate), so
 * that server / raw engine is the price of the server's per-token path and nothing else.
 */
/** `onWarm` is called after the warm-up round, before the measured ones. */
export async function runRawEngine(options: RawOptions, repeats: number, onWarm?: () => void): Promise<RunMeasure[]> {
  const llama = await getLlama({ logLevel: LlamaLogLevel.error, build: 'never' });
  const model = await llama.loadModel({ modelPath: options.modelPath });
  const context = await model.createContext({
    sequences: options.streams,
    contextSize: 2048,
    threads: options.threads,
    flashAttention: wantsFlashAttention(model),
  });
  const gate = new DecodeBatchGate(context);
  const chatWrapper = resolveChatWrapper(model);
  const sequences = Array.from({ length: options.streams }, () => context.getSequence());
  const runs: RunMeasure[] = [];
  try {
    for (let repeat = -1; repeat < repeats; repeat++) {
      await Promise.all(sequences.map((sequence) => sequence.clearHistory()));
      if (repeat === 0) onWarm?.();
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
                // The first round, a warm-up, is short.
                maxTokens: repeat < 0 ? Math.min(8, options.maxTokens) : options.maxTokens,
                temperature: 0,
                seed: options.seed,
                onResponseChunk: (chunk) => clocks[index]?.chunk(chunk.tokens.length),
              },
            )
            .finally(() => {
              gate.leave(contextSequence);
              chat.dispose({ disposeSequence: false });
            });
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
