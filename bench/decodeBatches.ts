import { getLlama, LlamaChat, type LlamaContext, LlamaLogLevel, resolveChatWrapper } from 'node-llama-cpp';
import { DecodeBatchGate } from '../server/engine/DecodeBatchGate.js';
import { wantsFlashAttention } from '../server/engine/flashAttention.js';
import { syntheticLlama } from '../tooling/syntheticModels.js';
import { MODEL_PATH } from '../tooling/testModel.js';
import { benchFlags } from './benchFlags.js';

/**
 * npm run bench:batches: what each decode carries. `--streams` generations at once on one
 * context (threads 1), with the engine's batching (`--gate on`) or the library's own (`--gate
 * off`), and flash attention by model size (`--flash auto`) or `on`/`off`; prints, per batch
 * size, how many decodes and their mean CPU time (the process's, so steadier than wall time on a
 * busy machine), and CPU time per generated token.
 */
const { model, streams, tokens, gate, flash } = benchFlags(process.argv.slice(2), {
  model: 'synthetic',
  streams: 8,
  tokens: 64,
  gate: 'on',
  flash: 'auto',
});

type NativeContext = { initBatch(tokens: number): void; decodeBatch(): Promise<void> };
type Decode = { tokens: number; cpuMs: number };

function recordDecodes(context: LlamaContext): Decode[] {
  const decodes: Decode[] = [];
  const internals = context as unknown as { _ctx: NativeContext };
  const native = internals._ctx;
  let tokensInBatch = 0;
  internals._ctx = new Proxy(native, {
    get(target, property) {
      if (property === 'initBatch') {
        return (count: number) => {
          tokensInBatch = count;
          target.initBatch(count);
        };
      }
      if (property === 'decodeBatch') {
        return async () => {
          const before = process.cpuUsage();
          await target.decodeBatch();
          const { user, system } = process.cpuUsage(before);
          decodes.push({ tokens: tokensInBatch, cpuMs: (user + system) / 1000 });
        };
      }
      const value = Reflect.get(target, property);
      return typeof value === 'function' ? value.bind(target) : value;
    },
  });
  return decodes;
}

const llama = await getLlama({ logLevel: LlamaLogLevel.error, build: 'never' });
const loaded = await llama.loadModel({
  modelPath: model === 'tiny' ? MODEL_PATH : model === 'synthetic' ? syntheticLlama() : model,
});
const flashAttention = flash === 'auto' ? wantsFlashAttention(loaded) : flash === 'on';
const context = await loaded.createContext({
  sequences: streams,
  contextSize: 256 * streams,
  threads: 1,
  flashAttention,
});
const decodes = recordDecodes(context);
const batchGate = gate === 'on' ? new DecodeBatchGate(context) : undefined;
const sequences = Array.from({ length: streams }, () => context.getSequence());
console.log(
  `${model}, ${llama.buildType} binary, ${streams} streams × ${tokens} tokens, gate ${gate}, flash attention ${flashAttention}`,
);
for (const round of ['warm-up', 'measured']) {
  decodes.length = 0;
  await Promise.all(sequences.map((sequence) => sequence.clearHistory()));
  let generated = 0;
  const startedAt = performance.now();
  await Promise.all(
    sequences.map((contextSequence) => {
      const chat = new LlamaChat({ contextSequence, chatWrapper: resolveChatWrapper(loaded) });
      return chat
        .generateResponse(
          [
            { type: 'user', text: 'Once upon a time' },
            { type: 'model', response: [] },
          ],
          { maxTokens: tokens, temperature: 0, onResponseChunk: (chunk) => (generated += chunk.tokens.length) },
        )
        .finally(() => {
          batchGate?.leave(contextSequence);
          chat.dispose({ disposeSequence: false });
        });
    }),
  );
  if (round === 'warm-up') continue;
  const wallMs = performance.now() - startedAt;
  const cpuMs = decodes.reduce((sum, decode) => sum + decode.cpuMs, 0);
  const bySize = new Map<number, Decode[]>();
  for (const decode of decodes) bySize.set(decode.tokens, [...(bySize.get(decode.tokens) ?? []), decode]);
  console.log(
    `${generated} tokens in ${decodes.length} decodes, ${wallMs.toFixed(0)} ms; decode CPU ${cpuMs.toFixed(0)} ms, ${(cpuMs / generated).toFixed(2)} ms a token`,
  );
  console.log('| tokens in the decode | decodes | mean CPU ms |\n| --- | --- | --- |');
  for (const [size, list] of [...bySize.entries()].sort((a, b) => a[0] - b[0])) {
    console.log(
      `| ${size} | ${list.length} | ${(list.reduce((sum, d) => sum + d.cpuMs, 0) / list.length).toFixed(2)} |`,
    );
  }
}
await context.dispose();
await loaded.dispose();
await llama.dispose();
