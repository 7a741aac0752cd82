import { getLlama, LlamaChat, type LlamaContext, LlamaLogLevel, resolveChatWrapper, type Token } from 'node-llama-cpp';
import { startLlamaServer } from '../tooling/llamaServer.js';
import { syntheticLlama } from '../tooling/syntheticModels.js';
import { MODEL_PATH } from '../tooling/testModel.js';
import { benchFlags } from './benchFlags.js';
import { runOnce } from './sseClients.js';

/**
 * npm run bench:token-path: where one stream's time per token goes in node-llama-cpp, against
 * llama-server's (when LLAMA_SERVER_BIN is set). In process, one sequence, threads 1: LlamaChat
 * (what the engine uses), a bare `sequence.evaluate` loop (no chat wrapper, stop triggers or
 * segments), and the two native calls every token takes, each a hop to a worker thread and back:
 * the decode and the sampling. The sides take turns in rounds; medians of the rounds.
 */
const { model, tokens, rounds } = benchFlags(process.argv.slice(2), { model: 'tiny', tokens: 128, rounds: 15 });
const modelPath = model === 'tiny' ? MODEL_PATH : model === 'synthetic' ? syntheticLlama() : model;
const PROMPT = 'Once upon a time';

type NativeCalls = { decodeMs: number; decodes: number; sampleMs: number; samples: number };

/** Times the context's native decode and sampling calls, as the library awaits them. */
function timeNativeCalls(context: LlamaContext): NativeCalls {
  const calls: NativeCalls = { decodeMs: 0, decodes: 0, sampleMs: 0, samples: 0 };
  const internals = context as unknown as { _ctx: Record<string, unknown> };
  const native = internals._ctx;
  const timed = (call: (...args: unknown[]) => Promise<unknown>, add: (ms: number) => void) => {
    return async (...args: unknown[]) => {
      const startedAt = performance.now();
      const result = await call(...args);
      add(performance.now() - startedAt);
      return result;
    };
  };
  internals._ctx = new Proxy(native, {
    get(target, property) {
      const value = Reflect.get(target, property);
      if (typeof value !== 'function') return value;
      const bound = value.bind(target) as (...args: unknown[]) => Promise<unknown>;
      if (property === 'decodeBatch') {
        return timed(bound, (ms) => {
          calls.decodeMs += ms;
          calls.decodes++;
        });
      }
      if (property === 'sampleToken') {
        return timed(bound, (ms) => {
          calls.sampleMs += ms;
          calls.samples++;
        });
      }
      return bound;
    },
  });
  return calls;
}

const llama = await getLlama({ logLevel: LlamaLogLevel.error, build: 'never' });
const loaded = await llama.loadModel({ modelPath });
const context = await loaded.createContext({ sequences: 1, contextSize: 1024, threads: 1 });
const calls = timeNativeCalls(context);
const sequence = context.getSequence();
const chatWrapper = resolveChatWrapper(loaded);
const history = [
  { type: 'user' as const, text: PROMPT },
  { type: 'model' as const, response: [] },
];
const promptTokens = chatWrapper.generateContextState({ chatHistory: history }).contextText.tokenize(loaded.tokenizer);

/** Milliseconds a token after the first, from the first token's arrival to the last's. */
async function timeTokens(generate: (onToken: () => void) => Promise<void>): Promise<number> {
  await sequence.clearHistory();
  let first = 0;
  let last = 0;
  let count = 0;
  await generate(() => {
    last = performance.now();
    if (count++ === 0) first = last;
  });
  return (last - first) / Math.max(1, count - 1);
}

const viaChat = () =>
  timeTokens(async (onToken) => {
    const chat = new LlamaChat({ contextSequence: sequence, chatWrapper });
    await chat.generateResponse(history, { maxTokens: tokens, temperature: 0, onResponseChunk: onToken });
    chat.dispose({ disposeSequence: false });
  });

const viaEvaluate = () =>
  timeTokens(async (onToken) => {
    const generated: Token[] = [];
    for await (const token of sequence.evaluate(promptTokens, { temperature: 0 })) {
      generated.push(token);
      loaded.detokenize(generated.slice(-4));
      onToken();
      if (generated.length >= tokens) break;
    }
  });

const server =
  process.env.LLAMA_SERVER_BIN === undefined
    ? undefined
    : await startLlamaServer(process.env.LLAMA_SERVER_BIN, { model: modelPath, parallel: 1, threads: 1 });
const viaLlamaServer = async (url: string) => {
  const run = await runOnce(url, { streams: 1, prompt: PROMPT, maxTokens: tokens, seed: 42 });
  return run.interTokenMs.reduce((sum, ms) => sum + ms, 0) / run.interTokenMs.length;
};

const results = { chat: [] as number[], evaluate: [] as number[], decode: [] as number[], sample: [] as number[] };
const llamaServerMs: number[] = [];
try {
  for (let round = -1; round < rounds; round++) {
    const chatMs = await viaChat();
    Object.assign(calls, { decodeMs: 0, decodes: 0, sampleMs: 0, samples: 0 });
    const evaluateMs = await viaEvaluate();
    const serverMs = server === undefined ? undefined : await viaLlamaServer(server.url);
    if (round < 0) continue; // a warm-up round
    results.chat.push(chatMs);
    results.evaluate.push(evaluateMs);
    results.decode.push(calls.decodeMs / calls.decodes);
    results.sample.push(calls.sampleMs / calls.samples);
    if (serverMs !== undefined) llamaServerMs.push(serverMs);
  }
} finally {
  await server?.stop();
}
const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)] ?? Number.NaN;
const row = (name: string, values: number[]) => console.log(`| ${name} | ${median(values).toFixed(3)} |`);
console.log(`${model}, ${llama.buildType} binary, 1 stream, ${tokens} tokens, threads 1, median of ${rounds} rounds\n`);
console.log('| per token | ms |\n| --- | --- |');
row('LlamaChat (the engine)', results.chat);
row('bare sequence.evaluate loop', results.evaluate);
row('  of which the native decode call', results.decode);
row('  of which the native sampling call', results.sample);
if (llamaServerMs.length > 0) row('llama-server, mean inter-token time over SSE', llamaServerMs);
await context.dispose();
await loaded.dispose();
await llama.dispose();
