import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { createServer } from 'node:net';
import { MODEL_PATH } from '../../tooling/testModel.js';

/**
 * llama.cpp's llama-server (the binary at `bin`) on the test model, on a free port of 127.0.0.1,
 * with `parallel` slots of 2,048 tokens each; resolves once /health answers.
 */
export async function startLlamaServer(bin: string, { parallel = 2 } = {}) {
  const port = await freePort();
  const args = ['-m', MODEL_PATH, '--host', '127.0.0.1', '--port', String(port), '-np', String(parallel)];
  const child = spawn(bin, [...args, '-c', String(2048 * parallel), '--threads', '1', '--no-webui'], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  const output: string[] = [];
  child.stderr.on('data', (piece: Buffer) => output.push(piece.toString()));
  const exited = once(child, 'exit');
  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 30_000;
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
    stop: async () => {
      child.kill('SIGTERM');
      await exited;
    },
  };
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => resolve(typeof address === 'object' && address !== null ? address.port : 0));
    });
  });
}
