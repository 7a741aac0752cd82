import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import {
  HARMONY_TOOLS_SCRIPT,
  harmonyToolsScripted,
  syntheticModelsUnavailable,
} from '../../tooling/syntheticModels.js';
import { startTestServer } from '../helpers/startTestServer.js';

const EXAMPLES = ['examples/bots/openai.mjs', 'examples/bots/ai-sdk.mjs', 'examples/bots/langchain.mjs'];
const Story = z.object({ title: z.string(), tags: z.array(z.string()).max(3) });

/** Runs an example to its end: its exit code and everything it printed. */
async function run(example: string, baseUrl: string, part: 'tools' | 'schema') {
  const child = spawn(process.execPath, [example, baseUrl, part], { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const [code] = (await once(child, 'exit')) as [number | null];
  return { code, output };
}

/** The README's bot examples (examples/bots/), one per client, run as a user would run them. */
describe('the bot examples: structured output on the tiny model', () => {
  let harness: Awaited<ReturnType<typeof startTestServer>>;
  beforeAll(async () => {
    harness = await startTestServer();
  });
  afterAll(() => harness.stop());

  it.each(EXAMPLES)('%s fills the schema', async (example) => {
    const { code, output } = await run(example, harness.httpUrl, 'schema');
    expect(code, output).toBe(0);
    const printed = /^object: (.*)$/m.exec(output)?.[1];
    expect(Story.parse(JSON.parse(printed ?? 'null'))).toBeDefined();
  });
});

// The tiny model never calls a tool by itself; the scripted Harmony model calls get_weather and then
// answers, so each client's whole loop runs: the model calls, the client runs the tool, the model answers.
const unavailable = syntheticModelsUnavailable();
describe.skipIf(unavailable !== undefined)('the bot examples: an agent loop on the scripted tool model', () => {
  let harness: Awaited<ReturnType<typeof startTestServer>>;
  beforeAll(async () => {
    harness = await startTestServer({ modelPath: harmonyToolsScripted() });
  }, 180_000);
  afterAll(() => harness?.stop());

  it.each(EXAMPLES)('%s calls the tool, runs it, and prints the answer', async (example) => {
    const { code, output } = await run(example, harness.httpUrl, 'tools');
    expect(code, output).toBe(0);
    expect(output.match(/^tool call: .*$/gm)).toEqual([
      `tool call: get_weather(${JSON.stringify(HARMONY_TOOLS_SCRIPT.callArguments)})`,
    ]);
    expect(output).toContain(`answer: ${HARMONY_TOOLS_SCRIPT.answer}`);
  });
});
