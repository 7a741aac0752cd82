import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { ChatClient } from '../../client/ChatClient.js';
import { nodeSockets } from '../../client/node.js';
import type { GenerationParams } from '../../protocol/clientFrames.js';
import { type ServerFrame, TOOL_LIMITS } from '../../protocol/index.js';
import { startTestServer } from '../helpers/startTestServer.js';

const weatherTool = {
  type: 'function' as const,
  function: {
    name: 'get_weather',
    description: 'The weather in a city',
    parameters: {
      type: 'object',
      properties: { city: { type: 'string' } },
      required: ['city'],
      additionalProperties: false,
    },
  },
};
const timeTool = {
  type: 'function' as const,
  function: {
    name: 'get_time',
    parameters: {
      type: 'object',
      properties: { zone: { type: 'string', enum: ['UTC', 'CET'] }, precise: { type: 'boolean' } },
      required: ['zone', 'precise'],
      additionalProperties: false,
    },
  },
};
/** What each tool's arguments must be: the schemas above, written for the check. */
const argumentsOf: Record<string, z.ZodType> = {
  get_weather: z.strictObject({ city: z.string() }),
  get_time: z.strictObject({ zone: z.enum(['UTC', 'CET']), precise: z.boolean() }),
};

function expectValidCall(call: { function: { name: string; arguments: string } }, names: readonly string[]) {
  expect(names).toContain(call.function.name);
  const schema = argumentsOf[call.function.name];
  expect(schema?.safeParse(JSON.parse(call.function.arguments)).success).toBe(true);
}

/**
 * Tool calls on the OpenAI-compatible API with the real tiny model, through the `openai` package.
 * stories260K never calls a tool on its own, so `required` and a named tool must force one.
 */
describe('tool calls on /v1/chat/completions', () => {
  let harness: Awaited<ReturnType<typeof startTestServer>>;
  let client: OpenAI;
  beforeAll(async () => {
    harness = await startTestServer();
    client = new OpenAI({ baseURL: `${harness.httpUrl}/v1`, apiKey: 'none' });
  }, 120_000);
  afterAll(() => harness.stop());

  const user = { role: 'user' as const, content: 'What is the weather in Paris?' };

  it('forces a call with tool_choice "required" whose arguments parse and fit the schema', async () => {
    for (const seed of [1, 2, 3]) {
      const answer = await client.chat.completions.create({
        model: 'stories260K',
        messages: [user],
        tools: [weatherTool, timeTool],
        tool_choice: 'required',
        seed,
        max_tokens: 200,
      });
      const choice = answer.choices[0];
      expect(choice?.finish_reason).toBe('tool_calls');
      expect(choice?.message.content).toBeNull();
      const calls = choice?.message.tool_calls ?? [];
      expect(calls).toHaveLength(1);
      const [call] = calls;
      if (call?.type !== 'function') throw new Error('expected a function call');
      expect(call.id).toMatch(/^call_/);
      expectValidCall(call, ['get_weather', 'get_time']);
      expect(answer.usage?.completion_tokens).toBeGreaterThan(0);
    }
  });

  it('forces the named function', async () => {
    const answer = await client.chat.completions.create({
      model: 'stories260K',
      messages: [user],
      tools: [weatherTool, timeTool],
      tool_choice: { type: 'function', function: { name: 'get_time' } },
      max_tokens: 200,
    });
    const call = answer.choices[0]?.message.tool_calls?.[0];
    if (call?.type !== 'function') throw new Error('expected a function call');
    expect(call.function.name).toBe('get_time');
    expectValidCall(call, ['get_time']);
  });

  it('streams a forced call in OpenAI chunk shape: id, type and name first, then argument pieces', async () => {
    const stream = await client.chat.completions.create({
      model: 'stories260K',
      messages: [user],
      tools: [weatherTool],
      tool_choice: { type: 'function', function: { name: 'get_weather' } },
      max_tokens: 200,
      stream: true,
    });
    const pieces: OpenAI.Chat.Completions.ChatCompletionChunk.Choice.Delta.ToolCall[] = [];
    let finish: string | null = null;
    for await (const chunk of stream) {
      const choice = chunk.choices[0];
      pieces.push(...(choice?.delta.tool_calls ?? []));
      finish = choice?.finish_reason ?? finish;
    }
    expect(finish).toBe('tool_calls');
    const [first, ...rest] = pieces;
    expect(first?.id).toMatch(/^call_/);
    expect(first?.type).toBe('function');
    expect(first?.function?.name).toBe('get_weather');
    expect(rest.length).toBeGreaterThan(0);
    for (const piece of rest) {
      expect(piece.id).toBeUndefined();
      expect(piece.function?.name).toBeUndefined();
      expect(piece.index).toBe(0);
    }
    const text = pieces.map((piece) => piece.function?.arguments ?? '').join('');
    expectValidCall({ function: { name: 'get_weather', arguments: text } }, ['get_weather']);
  });

  it('the stream and the whole answer are the same call at temperature 0', async () => {
    const request = {
      model: 'stories260K',
      messages: [user],
      tools: [weatherTool],
      tool_choice: 'required' as const,
      temperature: 0,
      max_tokens: 200,
    };
    const whole = await client.chat.completions.create(request);
    const stream = await client.chat.completions.create({ ...request, stream: true });
    let text = '';
    for await (const chunk of stream) text += chunk.choices[0]?.delta.tool_calls?.[0]?.function?.arguments ?? '';
    const call = whole.choices[0]?.message.tool_calls?.[0];
    if (call?.type !== 'function') throw new Error('expected a function call');
    expect(text).toBe(call.function.arguments);
  });

  it('counts tool calls and grammar-constrained generations in /metrics', async () => {
    const read = async () => {
      const text = await (await fetch(`${harness.httpUrl}/metrics`)).text();
      const value = (line: string) =>
        Number(
          text
            .split('\n')
            .find((l) => l.startsWith(line))
            ?.split(' ')
            .at(-1) ?? 0,
        );
      return {
        calls: value('llmchat_tool_calls_total '),
        constrained: value('llmchat_constrained_generations_total{kind="tool_call"}'),
      };
    };
    const before = await read();
    await client.chat.completions.create({
      model: 'stories260K',
      messages: [user],
      tools: [weatherTool],
      tool_choice: 'required',
      max_tokens: 200,
    });
    // The metrics are counted as the generation ends, with the answer.
    expect(await read()).toEqual({ calls: before.calls + 1, constrained: before.constrained + 1 });
  });

  it('offers no tools with tool_choice "none": a plain answer', async () => {
    const answer = await client.chat.completions.create({
      model: 'stories260K',
      messages: [user],
      tools: [weatherTool],
      tool_choice: 'none',
      max_tokens: 16,
    });
    expect(answer.choices[0]?.message.tool_calls).toBeUndefined();
    expect(answer.choices[0]?.finish_reason).not.toBe('tool_calls');
    expect(answer.choices[0]?.message.content?.length).toBeGreaterThan(0);
  });

  it('accepts a history with calls and their results, and answers after them', async () => {
    const answer = await client.chat.completions.create({
      model: 'stories260K',
      messages: [
        user,
        {
          role: 'assistant',
          content: null,
          tool_calls: [
            { id: 'call_1', type: 'function', function: { name: 'get_weather', arguments: '{"city":"Paris"}' } },
            {
              id: 'call_2',
              type: 'function',
              function: { name: 'get_time', arguments: '{"zone":"CET","precise":true}' },
            },
          ],
        },
        { role: 'tool', tool_call_id: 'call_1', content: 'Sunny, 21 °C' },
        { role: 'tool', tool_call_id: 'call_2', content: '14:05' },
      ],
      tools: [weatherTool, timeTool],
      max_tokens: 16,
    });
    expect(answer.choices[0]?.message.content?.length).toBeGreaterThan(0);
    expect(answer.usage?.prompt_tokens).toBeGreaterThan(10);
  });
});

describe('tool calls: bad input on /v1/chat/completions', () => {
  let harness: Awaited<ReturnType<typeof startTestServer>>;
  beforeAll(async () => {
    harness = await startTestServer();
  }, 120_000);
  afterAll(() => harness.stop());

  const post = async (body: Record<string, unknown>) => {
    const response = await fetch(`${harness.httpUrl}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ messages: [{ role: 'user', content: 'hi' }], max_tokens: 4, ...body }),
    });
    const json = (await response.json()) as { error: { code: string; message: string; param?: string } };
    return { status: response.status, ...json.error };
  };
  const tool = (name: string, parameters: unknown, description?: string) => ({
    type: 'function',
    function: { name, parameters, ...(description === undefined ? {} : { description }) },
  });
  const call = (id: string, args = '{}') => ({ id, type: 'function', function: { name: 'f', arguments: args } });

  it('refuses a parameters schema the grammar cannot enforce, naming the tool and the construct', async () => {
    const refused = await post({
      tools: [
        tool('ok', { type: 'object' }),
        tool('lookup', { type: 'object', properties: { id: { type: 'string', pattern: '^a' } } }),
      ],
      tool_choice: 'required',
    });
    expect(refused).toMatchObject({ status: 400, code: 'bad_frame', param: 'tools[1].parameters' });
    expect(refused.message).toContain('"lookup"');
    expect(refused.message).toContain('/properties/id');
    expect(refused.message).toContain('pattern');
  });

  it('refuses bad names, repeated names, and a named choice that is not a tool', async () => {
    expect(await post({ tools: [tool('has space', {})] })).toMatchObject({
      status: 400,
      code: 'bad_frame',
      param: 'tools[0].name',
    });
    expect(await post({ tools: [tool('a'.repeat(65), {})] })).toMatchObject({ status: 400, code: 'bad_frame' });
    expect(await post({ tools: [tool('a', {}), tool('a', {})] })).toMatchObject({
      status: 400,
      param: 'tools[1].name',
    });
    const unknown = await post({ tools: [tool('a', {})], tool_choice: { type: 'function', function: { name: 'b' } } });
    expect(unknown).toMatchObject({ status: 400, code: 'bad_frame', param: 'tool_choice' });
    expect(await post({ tool_choice: 'required' })).toMatchObject({ status: 400, param: 'tool_choice' });
  });

  it('refuses tools, descriptions and schemas over their bounds', async () => {
    const many = Array.from({ length: 65 }, (_, i) => tool(`t${i}`, {}));
    expect(await post({ tools: many })).toMatchObject({ status: 413, code: 'payload_too_large' });
    expect(await post({ tools: [tool('a', {}, 'x'.repeat(4097))] })).toMatchObject({
      status: 413,
      param: 'tools[0].description',
    });
    const wide = {
      type: 'object',
      properties: Object.fromEntries(Array.from({ length: 800 }, (_, i) => [`p${i}`, { type: 'string' }])),
    };
    expect(await post({ tools: [tool('a', wide)] })).toMatchObject({ status: 413, param: 'tools[0].parameters' });
  });

  it('refuses a history whose tool messages do not fit its calls', async () => {
    const orphan = await post({
      messages: [
        { role: 'user', content: 'hi' },
        { role: 'tool', tool_call_id: 'x', content: '1' },
      ],
    });
    expect(orphan).toMatchObject({ status: 400, code: 'bad_frame', param: 'messages[1].tool_call_id' });
    const unanswered = await post({
      messages: [
        { role: 'user', content: 'hi' },
        { role: 'assistant', content: null, tool_calls: [call('c1')] },
        { role: 'user', content: 'and?' },
      ],
    });
    expect(unanswered).toMatchObject({ status: 400, code: 'bad_frame', param: 'messages[2]' });
    const notJson = await post({
      messages: [
        { role: 'user', content: 'hi' },
        { role: 'assistant', content: null, tool_calls: [call('c1', '{city')] },
        { role: 'tool', tool_call_id: 'c1', content: '1' },
      ],
    });
    expect(notJson).toMatchObject({ status: 400, param: 'messages[1].tool_calls[0].function.arguments' });
    const twice = await post({
      messages: [
        { role: 'user', content: 'hi' },
        { role: 'assistant', content: null, tool_calls: [call('c1')] },
        { role: 'tool', tool_call_id: 'c1', content: '1' },
        { role: 'tool', tool_call_id: 'c1', content: '2' },
      ],
    });
    expect(twice).toMatchObject({ status: 400, param: 'messages[3].tool_call_id' });
  });

  it('refuses a tool result over the message bound, and the legacy functions', async () => {
    const long = await post({
      messages: [
        { role: 'user', content: 'hi' },
        { role: 'assistant', content: null, tool_calls: [call('c1')] },
        { role: 'tool', tool_call_id: 'c1', content: 'x'.repeat(harness.config.maxMessageChars + 1) },
      ],
    });
    expect(long).toMatchObject({ status: 413, code: 'payload_too_large' });
    expect(await post({ functions: [{ name: 'f' }] })).toMatchObject({ status: 400, code: 'unsupported_parameter' });
  });

  it('refuses tools on /v1/completions, which has no messages for them', async () => {
    const response = await fetch(`${harness.httpUrl}/v1/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ prompt: 'Once', max_tokens: 4, tools: [tool('a', {})] }),
    });
    expect(response.status).toBe(400);
    expect(((await response.json()) as { error: { code: string } }).error).toMatchObject({
      code: 'unsupported_parameter',
      param: 'tools',
    });
  });

  it('refuses response_format json with tools the model may call', async () => {
    const refused = await post({ tools: [tool('a', {})], response_format: { type: 'json_object' } });
    expect(refused).toMatchObject({ status: 400, code: 'unsupported_parameter', param: 'response_format' });
  });
});

/**
 * Protocol v1: tools in chat.send, a `tool.call` frame per call, `tool.result` frames that run the
 * next generation, and a session history (in SQLite) that keeps both.
 */
describe('tool calls on protocol v1', () => {
  let dir: string;
  let harness: Awaited<ReturnType<typeof startTestServer>>;
  let client: ChatClient;
  const tools = [
    { name: 'get_weather', description: 'The weather in a city', parameters: weatherTool.function.parameters },
  ];
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'tools-'));
    harness = await startTestServer({ store: `sqlite:${join(dir, 'store.sqlite')}` });
    client = await ChatClient.connect(harness.wsUrl, { createSocket: nodeSockets() });
  }, 120_000);
  afterAll(async () => {
    await client?.close();
    await harness?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it('sends tool.call, takes tool.result, runs the next generation, and keeps calls and results in the history', async () => {
    const frames: ServerFrame[] = [];
    client.observe((frame) => frames.push(frame));
    const { sessionId, resumeToken } = await client.openSession({ system: 'You answer about the weather.' });
    const asking = client.chat(sessionId, 'What is the weather in Paris?', {
      tools,
      toolChoice: 'required',
      maxTokens: 200,
    });
    const asked = await asking.done;
    expect(asked.finish).toBe('tool_calls');
    expect(asking.toolCalls).toHaveLength(1);
    const [call] = asking.toolCalls;
    if (call === undefined) throw new Error('expected a call');
    expect(call).toMatchObject({ type: 'tool.call', genId: asking.genId, name: 'get_weather' });
    expect(argumentsOf.get_weather?.safeParse(JSON.parse(call.arguments)).success).toBe(true);
    // The call comes just before its generation.done.
    const order = frames.filter((f) => 'genId' in f && f.genId === asking.genId).map((f) => f.type);
    expect(order.slice(-2)).toEqual(['tool.call', 'generation.done']);

    const answering = client.sendToolResults(sessionId, [{ callId: call.callId, content: 'Sunny, 21 degrees' }]);
    const queued = await answering.queued;
    expect(queued.genId).not.toBe(asking.genId);
    const answered = await answering.done;
    // The continuation is not forced again: the tiny model answers in words.
    expect(answered.finish).not.toBe('tool_calls');
    const answer = await answering.text();
    expect(answer.length).toBeGreaterThan(0);
    expect(answered.usage.promptTokens).toBeGreaterThan(asked.usage.promptTokens);

    // Reattached on a second connection (the store's round trip of these fields: test/unit/toolHistory.test.ts).
    const second = await ChatClient.connect(harness.wsUrl, { createSocket: nodeSockets() });
    const reopened = await second.openSession({ sessionId, resumeToken });
    await second.close();
    expect(reopened.history).toEqual([
      { role: 'system', content: 'You answer about the weather.' },
      { role: 'user', content: 'What is the weather in Paris?' },
      {
        role: 'assistant',
        content: '',
        finish: 'tool_calls',
        toolCalls: [{ callId: call.callId, name: 'get_weather', arguments: call.arguments }],
      },
      { role: 'tool', content: 'Sunny, 21 degrees', callId: call.callId },
      { role: 'assistant', content: answer, ...(answered.finish === 'stop' ? {} : { finish: answered.finish }) },
    ]);
  }, 120_000);

  it('refuses a result for no waiting call, one over the bound, and a chat.send while calls wait', async () => {
    const { sessionId } = await client.openSession();
    const asking = client.chat(sessionId, 'Weather?', { tools, toolChoice: { name: 'get_weather' }, maxTokens: 200 });
    await asking.done;
    const [call] = asking.toolCalls;
    if (call === undefined) throw new Error('expected a call');
    const unknown = client.sendToolResults(sessionId, [{ callId: 'call_nope', content: 'x' }]);
    await expect(unknown.done).rejects.toMatchObject({
      code: 'bad_frame',
      message: expect.stringContaining('call_nope'),
    });
    const tooLong = client.sendToolResults(sessionId, [
      { callId: call.callId, content: 'x'.repeat(harness.config.maxMessageChars + 1) },
    ]);
    await expect(tooLong.done).rejects.toMatchObject({ code: 'payload_too_large' });
    const moving = client.chat(sessionId, 'Never mind');
    await expect(moving.done).rejects.toMatchObject({
      code: 'bad_frame',
      message: expect.stringContaining(call.callId),
    });
    const answering = client.sendToolResults(sessionId, [{ callId: call.callId, content: 'Rain' }]);
    expect((await answering.done).finish).not.toBe('tool_calls');
    const again = client.sendToolResults(sessionId, [{ callId: call.callId, content: 'Rain' }]);
    await expect(again.done).rejects.toMatchObject({
      code: 'bad_frame',
      message: expect.stringContaining('No tool calls are waiting'),
    });
  }, 120_000);

  it('refuses tools it cannot offer, naming the tool and the construct', async () => {
    const { sessionId } = await client.openSession();
    const refused = async (params: GenerationParams) => {
      const generation = client.chat(sessionId, 'hi', params);
      return generation.done.then(
        () => undefined,
        (error: { code: string; message: string }) => error,
      );
    };
    const pattern = await refused({
      tools: [
        { name: 'lookup', parameters: { type: 'object', properties: { id: { type: 'string', pattern: '^a' } } } },
      ],
    });
    expect(pattern).toMatchObject({ code: 'bad_frame' });
    expect(pattern?.message).toContain('"lookup" at /properties/id');
    expect(await refused({ tools: [{ name: 'bad name', parameters: {} }] })).toMatchObject({ code: 'bad_frame' });
    const many = Array.from({ length: TOOL_LIMITS.maxTools + 1 }, (_, i) => ({ name: `t${i}`, parameters: {} }));
    expect(await refused({ tools: many })).toMatchObject({ code: 'payload_too_large' });
    const long = [{ name: 'a', description: 'x'.repeat(TOOL_LIMITS.maxDescriptionChars + 1), parameters: {} }];
    expect(await refused({ tools: long })).toMatchObject({ code: 'payload_too_large' });
    expect(await refused({ tools, toolChoice: { name: 'other' } })).toMatchObject({ code: 'bad_frame' });
    expect(client.welcome.limits.tools).toEqual(TOOL_LIMITS);
  });
});

/** Tools through a server in front of an upstream (this server with the tiny model): forwarded, calls mapped back. */
describe('tool calls through an upstream engine', () => {
  let upstream: Awaited<ReturnType<typeof startTestServer>>;
  let gateway: Awaited<ReturnType<typeof startTestServer>>;
  let client: OpenAI;
  beforeAll(async () => {
    upstream = await startTestServer();
    gateway = await startTestServer({ upstream: `${upstream.httpUrl}/v1` });
    client = new OpenAI({ baseURL: `${gateway.httpUrl}/v1`, apiKey: 'none' });
  }, 120_000);
  afterAll(async () => {
    await gateway?.stop();
    await upstream?.stop();
  });

  it('forwards tools and tool_choice, and streams the upstream call back in OpenAI chunk shape', async () => {
    const request = {
      model: 'stories260K',
      messages: [{ role: 'user' as const, content: 'Weather in Paris?' }],
      tools: [weatherTool],
      tool_choice: 'required' as const,
      temperature: 0,
      max_tokens: 200,
    };
    const whole = await client.chat.completions.create(request);
    expect(whole.choices[0]?.finish_reason).toBe('tool_calls');
    const call = whole.choices[0]?.message.tool_calls?.[0];
    if (call?.type !== 'function') throw new Error('expected a function call');
    expectValidCall(call, ['get_weather']);
    const stream = await client.chat.completions.create({ ...request, stream: true });
    let text = '';
    let finish: string | null = null;
    for await (const chunk of stream) {
      text += chunk.choices[0]?.delta.tool_calls?.[0]?.function?.arguments ?? '';
      finish = chunk.choices[0]?.finish_reason ?? finish;
    }
    expect(finish).toBe('tool_calls');
    expect(text).toBe(call.function.arguments);
  });

  it('forwards a history with calls and results', async () => {
    const answer = await client.chat.completions.create({
      model: 'stories260K',
      messages: [
        { role: 'user', content: 'Weather in Paris?' },
        {
          role: 'assistant',
          content: null,
          tool_calls: [
            { id: 'call_1', type: 'function', function: { name: 'get_weather', arguments: '{"city":"Paris"}' } },
          ],
        },
        { role: 'tool', tool_call_id: 'call_1', content: 'Sunny' },
      ],
      tools: [weatherTool],
      max_tokens: 8,
    });
    expect(answer.choices[0]?.message.content?.length).toBeGreaterThan(0);
  });
});
