import {
  getLlama,
  type Llama,
  LlamaChat,
  type LlamaContext,
  type LlamaContextSequence,
  LlamaLogLevel,
  type LlamaModel,
  resolveChatWrapper,
} from 'node-llama-cpp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DecodeBatchGate } from '../../server/engine/DecodeBatchGate.js';
import { MODEL_PATH } from '../../tooling/testModel.js';

type NativeContext = { initBatch(tokens: number): void };

/** Records the tokens of every decode the context makes, from its native batch calls. */
function recordBatches(context: LlamaContext): number[] {
  const sizes: number[] = [];
  const internals = context as unknown as { _ctx: NativeContext };
  const native = internals._ctx;
  internals._ctx = new Proxy(native, {
    get(target, property) {
      if (property === 'initBatch') {
        return (tokens: number) => {
          sizes.push(tokens);
          target.initBatch(tokens);
        };
      }
      const value = Reflect.get(target, property);
      return typeof value === 'function' ? value.bind(target) : value;
    },
  });
  return sizes;
}

describe('DecodeBatchGate on the real model', () => {
  let llama: Llama;
  let model: LlamaModel;
  beforeAll(async () => {
    llama = await getLlama({ logLevel: LlamaLogLevel.error, build: 'never' });
    model = await llama.loadModel({ modelPath: MODEL_PATH });
  });
  afterAll(async () => {
    await model.dispose();
    await llama.dispose();
  });

  async function generateTogether(maxTokens: readonly number[]) {
    const context = await model.createContext({ sequences: maxTokens.length, contextSize: 1024, threads: 1 });
    const sizes = recordBatches(context);
    const gate = new DecodeBatchGate(context);
    const sequences = maxTokens.map(() => context.getSequence());
    const answer = (contextSequence: LlamaContextSequence, tokens: number) => {
      const chat = new LlamaChat({ contextSequence, chatWrapper: resolveChatWrapper(model) });
      let generated = 0;
      return chat
        .generateResponse(
          [
            { type: 'user', text: 'Once upon a time' },
            { type: 'model', response: [] },
          ],
          { maxTokens: tokens, temperature: 0, onResponseChunk: (chunk) => (generated += chunk.tokens.length) },
        )
        .then(() => generated)
        .finally(() => {
          gate.leave(contextSequence);
          chat.dispose({ disposeSequence: false });
        });
    };
    try {
      const generated = await Promise.all(sequences.map((sequence, index) => answer(sequence, maxTokens[index] ?? 0)));
      return { gate, sizes, generated };
    } finally {
      await context.dispose();
    }
  }

  it("puts every generating sequence's next token into each decode", async () => {
    const { gate, sizes, generated } = await generateTogether([48, 48, 48, 48]);
    expect(gate.active).toBe(true);
    expect(generated).toEqual([48, 48, 48, 48]);
    // One decode of the four prompts, then one of four tokens per step (the last step samples without decoding).
    const fullDecodes = sizes.filter((size) => size === 4).length;
    expect(fullDecodes).toBe(47);
    expect(sizes.length).toBe(48);
  });

  it('stops waiting for a sequence whose generation has ended', async () => {
    const { sizes, generated } = await generateTogether([40, 40, 10]);
    expect(generated).toEqual([40, 40, 10]);
    // Three tokens a decode while all three generate, then two: no decode carries a lone straggler.
    expect(sizes.filter((size) => size === 3).length).toBe(9);
    expect(sizes.filter((size) => size === 2).length).toBe(30);
    expect(sizes.filter((size) => size === 1)).toEqual([]);
  });
});
