import { execFileSync, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { homedir, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Tiktoken } from 'js-tiktoken/lite';
import o200k from 'js-tiktoken/ranks/o200k_base';
import type { ReasoningLevel } from '../protocol/index.js';
import { PACKAGE_ROOT } from '../server/packageRoot.js';

/**
 * Synthetic models for benchmarks and tests, written once into a cache outside the repo (never
 * committed): random weights of a chosen size and architecture, a real tokenizer. They need numpy
 * (Debian: python3-numpy) and gguf-py, which comes with the llama.cpp source node-llama-cpp bundles.
 */
export const SYNTHETIC_DIR =
  process.env.SYNTHETIC_MODELS_DIR ?? join(homedir(), '.cache', 'llm-chat-server', 'synthetic');
const LLAMA_SOURCE = join(homedir(), '.cache', 'llm-chat-server', 'llama.cpp');
const BUNDLE = join(PACKAGE_ROOT, 'node_modules', 'node-llama-cpp', 'llama', 'gitRelease.bundle');
const TINY_MODEL = join(PACKAGE_ROOT, 'models', 'stories260K.gguf');
const GENERATORS = join(PACKAGE_ROOT, 'tooling', 'models');

const NO_NUMPY = 'Synthetic models need Python 3 with numpy: apt-get install python3-numpy';

/** A Python 3 that has numpy: Debian's first (apt python3-numpy), then the one on PATH. */
function findPython(): string | undefined {
  return ['/usr/bin/python3', 'python3'].find(
    (candidate) => spawnSync(candidate, ['-c', 'import numpy'], { stdio: 'ignore' }).status === 0,
  );
}

function python(): string {
  const found = findPython();
  if (found === undefined) throw new Error(NO_NUMPY);
  return found;
}

/** Why synthetic models cannot be written here, or undefined when they can (for tests to skip with a reason). */
export function syntheticModelsUnavailable(): string | undefined {
  return findPython() === undefined ? NO_NUMPY : undefined;
}

/** gguf-py's folder, from the bundled llama.cpp source (cloned once into the cache; no network). */
function ggufPy(): string {
  if (!existsSync(join(LLAMA_SOURCE, 'gguf-py'))) {
    mkdirSync(join(LLAMA_SOURCE, '..'), { recursive: true });
    execFileSync('git', ['clone', '--quiet', BUNDLE, LLAMA_SOURCE], { stdio: 'ignore' });
  }
  return join(LLAMA_SOURCE, 'gguf-py');
}

/** Runs a generator script of tooling/models into `out` (atomically: a half-written file never counts). */
function generate(script: string, args: string[], out: string): string {
  if (existsSync(out)) return out;
  mkdirSync(SYNTHETIC_DIR, { recursive: true });
  // Per process: two test files may write the same model at once; the last rename wins, both whole.
  const partial = `${out}.${process.pid}.partial`;
  execFileSync(python(), [join(GENERATORS, script), ...args.map((a) => (a === out ? partial : a))], {
    // No __pycache__ left beside the generators (they import each other).
    env: { ...process.env, PYTHONPATH: ggufPy(), PYTHONDONTWRITEBYTECODE: '1' },
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  renameSync(partial, out);
  return out;
}

export type LlamaSize = { dim: number; layers: number; ff: number; heads: number };
/** About 85 M parameters: one decode costs about 8.5 ms a token on one core of this machine, as a real model's would. */
export const SYNTHETIC_85M: LlamaSize = { dim: 768, layers: 12, ff: 2048, heads: 8 };

/** A random-weights llama GGUF of `size` with the tiny model's tokenizer; its path. */
export function syntheticLlama(size: LlamaSize = SYNTHETIC_85M): string {
  const params = Math.round((size.layers * (4 * size.dim ** 2 + 3 * size.dim * size.ff)) / 1e6);
  const out = join(SYNTHETIC_DIR, `synthetic-llama-${params}M-d${size.dim}-l${size.layers}-f${size.ff}.gguf`);
  const flags = ['--dim', size.dim, '--layers', size.layers, '--ff', size.ff, '--heads', size.heads].map(String);
  return generate('synthetic_llama.py', [TINY_MODEL, out, ...flags], out);
}

/** The reply the scripted Harmony model writes to any message: its thought names the prompt's reasoning level. */
export const HARMONY_SCRIPT = {
  thought: (level: ReasoningLevel) => `Greeting received; reply kindly with ${level} effort`,
  answer: 'Hello, this answer was scripted into the weights.',
} as const;

/**
 * A tiny random-weights gpt-oss GGUF (sinks, sliding window, 32 experts in MXFP4, YaRN) with Harmony's
 * tokenizer and chat template; its path. It writes noise: it proves loading, the chat format and routing.
 */
export function gptOssSynthetic(): string {
  return harmonyModel('gpt-oss-synthetic', 'gpt_oss_synthetic.py', []);
}

/**
 * A gpt-oss GGUF whose weights are set by hand to answer any chat with HARMONY_SCRIPT as a Harmony reply (an
 * analysis part naming the prompt's reasoning level, then a final part), at any temperature up to about 1;
 * its path. How: tooling/models/harmony_scripted.py.
 */
export function harmonyScripted(): string {
  const levels = ['low', 'medium', 'high'] as const;
  const encoder = new Tiktoken(o200k);
  const script = {
    thought: Object.fromEntries(levels.map((level) => [level, encoder.encode(HARMONY_SCRIPT.thought(level))])),
    answer: encoder.encode(HARMONY_SCRIPT.answer),
  };
  return harmonyModel('harmony-scripted', 'harmony_scripted.py', [JSON.stringify(script)], ['scripted_readout.py']);
}

/**
 * What the scripted tool-calling Harmony model writes (tooling/models/harmony_tools_scripted.py): offered
 * `get_weather` through node-llama-cpp's Harmony chat wrapper, it thinks `thoughtBeforeCall` and calls
 * get_weather(callArguments) while its prompt holds no function result; once it holds one, it thinks
 * `thoughtAfterResult` and answers `answer`. Only the name and the arguments are in its weights: the
 * description and the schema are what a caller offers (the arguments must fit the schema's grammar).
 */
export const HARMONY_TOOLS_SCRIPT = {
  functionName: 'get_weather',
  functionDescription: 'Current weather in a city',
  functionParams: {
    type: 'object',
    properties: { city: { type: 'string' } },
    required: ['city'],
  },
  callArguments: { city: 'Paris' },
  thoughtBeforeCall: 'Looking up the forecast first',
  thoughtAfterResult: 'Forecast received; answering now',
  answer: 'It is sunny in Paris.',
} as const;

/**
 * A gpt-oss GGUF whose weights are set by hand to call HARMONY_TOOLS_SCRIPT's function once and then answer,
 * at temperature 0; its path. A result counts once the prompt holds both the result's opening
 * `<|start|>functions` and the call's `<|call|>`, which message text cannot produce (llama.cpp reads the other
 * Harmony tokens as special even in text). How: tooling/models/harmony_tools_scripted.py.
 */
export function harmonyToolsScripted(): string {
  const encoder = new Tiktoken(o200k);
  const script = {
    thoughtCall: encoder.encode(HARMONY_TOOLS_SCRIPT.thoughtBeforeCall),
    thoughtAnswer: encoder.encode(HARMONY_TOOLS_SCRIPT.thoughtAfterResult),
    answer: encoder.encode(HARMONY_TOOLS_SCRIPT.answer),
    name: encoder.encode(HARMONY_TOOLS_SCRIPT.functionName),
    arguments: encoder.encode(JSON.stringify(HARMONY_TOOLS_SCRIPT.callArguments)),
  };
  return harmonyModel(
    'harmony-tools-scripted',
    'harmony_tools_scripted.py',
    [JSON.stringify(script)],
    ['scripted_readout.py'],
  );
}

/**
 * Runs a Harmony model's generator with o200k's ranks (from js-tiktoken) and gpt-oss's chat template (from
 * the llama.cpp source); `inputs` go to it as JSON files, `helpers` are the other modules of tooling/models it
 * imports. The file name carries a hash of the generators and the inputs, so that a changed generator never
 * finds a stale model in the cache.
 */
function harmonyModel(name: string, script: string, inputs: string[], helpers: string[] = []): string {
  const sources = [script, 'gpt_oss.py', 'harmony_vocab.py', ...helpers].map((file) =>
    readFileSync(join(GENERATORS, file)),
  );
  const hash = createHash('sha256').update(Buffer.concat(sources)).update(inputs.join('\n')).digest('hex');
  const out = join(SYNTHETIC_DIR, `${name}-${hash.slice(0, 10)}.gguf`);
  if (existsSync(out)) return out;
  const ranks = fileURLToPath(import.meta.resolve('js-tiktoken/ranks/o200k_base'));
  const template = join(ggufPy(), '..', 'models', 'templates', 'openai-gpt-oss-120b.jinja');
  const scratch = mkdtempSync(join(tmpdir(), 'harmony-'));
  try {
    const files = inputs.map((input, i) => {
      const file = join(scratch, `input-${i}.json`);
      writeFileSync(file, input);
      return file;
    });
    return generate(script, [ranks, template, out, ...files], out);
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
}

// npm run models:synthetic: writes every synthetic model (once) and prints their paths, one a line.
if (import.meta.url === `file://${process.argv[1]}`) {
  console.log(syntheticLlama());
  console.log(gptOssSynthetic());
  console.log(harmonyScripted());
  console.log(harmonyToolsScripted());
}
