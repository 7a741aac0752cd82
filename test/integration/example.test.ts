import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestServer } from '../helpers/startTestServer.js';

describe('the README example', () => {
  let harness: Awaited<ReturnType<typeof startTestServer>>;
  beforeAll(async () => {
    harness = await startTestServer({ defaultMaxTokens: 30 });
  });
  afterAll(() => harness.stop());

  it('holds a two-turn conversation from examples/chat.mjs and exits at end of input', async () => {
    const child = spawn(process.execPath, ['examples/chat.mjs', harness.wsUrl], { stdio: ['pipe', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.stdin.end('Once upon a time\nWhat happened next?\n');
    const [code] = await once(child, 'exit');
    expect(code).toBe(0);
    const turns = output.match(/\[(stop|length), \d+ tokens\]/g) ?? [];
    expect(turns).toHaveLength(2);
    expect(output).not.toMatch(/\[[a-z_]+\] /);
  });
});
