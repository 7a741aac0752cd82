/**
 * What logprobs cost per generated token: the same answers on LlamaEngine with logprobs
 * off, with the sampled token's only (top 0), and with 20 alternatives. Alternates the settings
 * round by round so that drift in the machine's speed spreads over all of them.
 *
 *   npx tsx bench/logprobsCost.ts [--tokens 200] [--rounds 5] [--temperature 0]
 *   MODEL_PATH=/path/to/model.gguf npx tsx bench/logprobsCost.ts
 */
import { parseArgs } from 'node:util';
import type { LogprobsParams } from '../protocol/index.js';
import { LlamaEngine } from '../server/engine/LlamaEngine.js';
import { MODEL_PATH } from '../tooling/testModel.js';

const { values } = parseArgs({
  options: {
    tokens: { type: 'string', default: '200' },
    rounds: { type: 'string', default: '5' },
    temperature: { type: 'string', default: '0' },
  },
});
const maxTokens = Number(values.tokens);
const rounds = Number(values.rounds);
const temperature = Number(values.temperature);
const settings: { name: string; logprobs?: LogprobsParams }[] = [
  { name: 'off' },
  { name: 'top 0', logprobs: { top: 0 } },
  { name: 'top 20', logprobs: { top: 20 } },
];

const engine = await LlamaEngine.load({
  modelPath: MODEL_PATH,
  gpu: 'auto',
  threads: 2,
  contextSize: 2048,
  sequences: 1,
});
const perToken = new Map<string, number[]>(settings.map(({ name }) => [name, []]));
// CPU time too: on a shared machine the wall clock mostly measures the neighbours.
const cpuPerToken = new Map<string, number[]>(settings.map(({ name }) => [name, []]));
for (let round = -1; round < rounds; round++) {
  for (const { name, logprobs } of settings) {
    let tokens = 0;
    const began = performance.now();
    const cpuBefore = process.cpuUsage();
    await engine.generate({
      slot: 0,
      format: 'text',
      // A different prompt per round, so that no run finds its answer in the KV cache.
      messages: [{ role: 'user', content: `Once upon a time, in round ${round}, there was` }],
      params: { maxTokens, temperature, seed: round + 1, ...(logprobs === undefined ? {} : { logprobs }) },
      signal: new AbortController().signal,
      onChunk: (chunk) => {
        tokens += chunk.tokens;
      },
    });
    // The first round warms up and is not counted.
    if (round < 0) continue;
    const cpu = process.cpuUsage(cpuBefore);
    perToken.get(name)?.push(((performance.now() - began) * 1000) / Math.max(tokens, 1));
    cpuPerToken.get(name)?.push((cpu.user + cpu.system) / Math.max(tokens, 1));
  }
}
await engine.dispose();

const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)] ?? NaN;
const off = median(perToken.get('off') ?? []);
const cpuOff = median(cpuPerToken.get('off') ?? []);
console.log(
  `${engine.info.modelName} on ${engine.info.backend}, temperature ${temperature}, ${maxTokens} tokens a run, ${rounds} runs each`,
);
for (const { name } of settings) {
  const value = median(perToken.get(name) ?? []);
  const cpu = median(cpuPerToken.get(name) ?? []);
  console.log(
    `logprobs ${name.padEnd(7)} wall ${value.toFixed(1).padStart(8)} µs/token (${signed(value - off)}),` +
      ` cpu ${cpu.toFixed(1).padStart(8)} µs/token (${signed(cpu - cpuOff)})`,
  );
}

function signed(value: number): string {
  return `${value >= 0 ? '+' : ''}${value.toFixed(1)}`;
}
