import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { freePort } from './ports.js';
import { MODEL_PATH } from './testModel.js';

export type LlamaServerOptions = {
  /** The .gguf to serve; the test model by default. */
  model?: string;
  /** Slots (sequences decoded at once), each of `slotContext` tokens. */
  parallel?: number;
  slotContext?: number;
  threads?: number;
  /** The model's name in the API (llama-server lists its file path otherwise). */
  alias?: string;
};

/**
 * llama.cpp's llama-server (the binary at `bin`) on a free port of 127.0.0.1, for tests and
 * benchmarks; resolves once /health answers.
 */
export async function startLlamaServer(
  bin: string,
  { model = MODEL_PATH, parallel = 2, slotContext = 2048, threads = 1, alias }: LlamaServerOptions = {},
) {
  const port = await freePort();
  const args = ['-m', model, '--host', '127.0.0.1', '--port', String(port), '-np', String(parallel)];
  args.push('-c', String(slotContext * parallel), '--threads', String(threads), '--no-webui');
  if (alias !== undefined) args.push('--alias', alias);
  const child = spawn(bin, args, { stdio: ['ignore', 'ignore', 'pipe'] });
  const output: string[] = [];
  child.stderr.on('data', (piece: Buffer) => output.push(piece.toString()));
  const exited = once(child, 'exit');
  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 60_000;
  for (;;) {
    const health = await fetch(`${url}/health`).catch(() => undefined);
    if (health?.status === 200) break;
    if (child.exitCode !== null || Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`llama-server did not become healthy:\n${output.join('').slice(-2000)}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  return {
    url,
    pid: child.pid as number,
    /** The last of what it wrote to stderr, to explain a failure. */
    log: () => output.join('').slice(-4000),
    stop: async () => {
      child.kill('SIGTERM');
      await exited;
    },
  };
}
