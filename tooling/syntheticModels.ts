import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, renameSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
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

/** A Python 3 that has numpy: Debian's first (apt python3-numpy), then the one on PATH. */
function python(): string {
  const found = ['/usr/bin/python3', 'python3'].find(
    (candidate) => spawnSync(candidate, ['-c', 'import numpy'], { stdio: 'ignore' }).status === 0,
  );
  if (found === undefined) throw new Error('Synthetic models need Python 3 with numpy: apt-get install python3-numpy');
  return found;
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
  const partial = `${out}.partial`;
  execFileSync(
    python(),
    [join(PACKAGE_ROOT, 'tooling', 'models', script), ...args.map((a) => (a === out ? partial : a))],
    {
      env: { ...process.env, PYTHONPATH: ggufPy() },
      stdio: ['ignore', 'ignore', 'inherit'],
    },
  );
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

// npm run models:synthetic: writes every synthetic model (once) and prints their paths, one a line.
if (import.meta.url === `file://${process.argv[1]}`) {
  console.log(syntheticLlama());
}
