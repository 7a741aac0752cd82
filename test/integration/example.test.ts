import { spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestServer } from '../helpers/startTestServer.js';

/** Runs a command to its end; its exit code and everything it printed. */
async function run(command: string, args: string[], input = ''): Promise<{ code: number | null; output: string }> {
  const child = spawn(command, args, { stdio: ['pipe', 'pipe', 'pipe'] });
  let output = '';
  child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stdin.end(input);
  const [code] = (await once(child, 'exit')) as [number | null];
  return { code, output };
}

/** A Python 3 that can import `module`: Debian's (apt python3-websockets) or the one on PATH. */
function pythonWith(module: string): string | undefined {
  return ['/usr/bin/python3', 'python3'].find(
    (python) => spawnSync(python, ['-c', `import ${module}`], { stdio: 'ignore' }).status === 0,
  );
}

const pythonWebsockets = pythonWith('websockets');
const pythonOpenai = pythonWith('openai');
if (pythonOpenai === undefined) {
  console.warn(
    'examples/openai_chat.py not run: no Python with the openai package (pip install openai; Debian has none)',
  );
}

describe('the README examples, against the real server', () => {
  let harness: Awaited<ReturnType<typeof startTestServer>>;
  beforeAll(async () => {
    harness = await startTestServer({ defaultMaxTokens: 30 });
  });
  afterAll(() => harness.stop());

  it('holds a two-turn conversation from examples/chat.mjs and exits at end of input', async () => {
    const { code, output } = await run(
      process.execPath,
      ['examples/chat.mjs', harness.wsUrl],
      'Once upon a time\nWhat happened next?\n',
    );
    expect(code).toBe(0);
    expect(output.match(/\[(stop|length), \d+ tokens\]/g) ?? []).toHaveLength(2);
    expect(output).not.toMatch(/\[[a-z_]+\] /);
  });

  it('streams an answer with curl (examples/curl.sh)', async () => {
    const { code, output } = await run('sh', ['examples/curl.sh', harness.httpUrl]);
    expect(code).toBe(0);
    expect(output).toMatch(/^data: \{"id":"chatcmpl-/);
    expect(output.trim().endsWith('data: [DONE]')).toBe(true);
  });

  it('streams an answer with the openai package for Node (examples/openai.mjs)', async () => {
    const { code, output } = await run(process.execPath, ['examples/openai.mjs', harness.httpUrl]);
    expect(code).toBe(0);
    expect(output.trim().length).toBeGreaterThan(10);
  });

  it.skipIf(pythonWebsockets === undefined)(
    'holds a turn over protocol v1 with Python websockets (examples/ws_chat.py)',
    async () => {
      const { code, output } = await run(pythonWebsockets as string, [
        'examples/ws_chat.py',
        harness.wsUrl,
        'Once upon a time',
      ]);
      expect([code, output]).toEqual([0, expect.stringMatching(/\n\[(stop|length), \d+ tokens\]\n$/)]);
    },
  );

  it.skipIf(pythonOpenai === undefined)(
    'streams an answer with the openai package for Python (examples/openai_chat.py)',
    async () => {
      const { code, output } = await run(pythonOpenai as string, ['examples/openai_chat.py', harness.httpUrl]);
      expect(code).toBe(0);
      expect(output.trim().length).toBeGreaterThan(10);
    },
  );
});
