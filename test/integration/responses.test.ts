import { createOpenAI } from '@ai-sdk/openai';
import { generateText, Output, stepCountIs, streamText, tool } from 'ai';
import OpenAI from 'openai';
import { zodTextFormat } from 'openai/helpers/zod';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { startTestServer } from '../helpers/startTestServer.js';

const KEY = 'sk-test-responses-0123456789ab';
const OTHER_KEY = 'sk-test-responses-other-01234';
const MODEL = 'stories260K';

const weather = {
  type: 'function' as const,
  name: 'get_weather',
  description: 'The weather in a city',
  parameters: {
    type: 'object',
    // Bounded, so that the tiny model's nonsense city ends within the token budget.
    properties: { city: { type: 'string', maxLength: 24 } },
    required: ['city'],
    additionalProperties: false,
  },
  strict: true,
};

/**
 * The Responses API (/v1/responses) with its real clients: the `openai` package and the Vercel AI
 * SDK's default OpenAI provider. The tiny model writes nonsense, so what is checked is the shape
 * of every answer and event, the conversation kept in the store, and the tool loop with a forced
 * first call (the tiny model never calls a tool by itself).
 */
describe('the Responses API', () => {
  let harness: Awaited<ReturnType<typeof startTestServer>>;
  let client: OpenAI;
  let other: OpenAI;
  beforeAll(async () => {
    harness = await startTestServer({ apiKeys: `${KEY},${OTHER_KEY}` });
    client = new OpenAI({ apiKey: KEY, baseURL: `${harness.httpUrl}/v1`, maxRetries: 0 });
    other = new OpenAI({ apiKey: OTHER_KEY, baseURL: `${harness.httpUrl}/v1`, maxRetries: 0 });
  });
  afterAll(() => harness.stop());

  it('answers text input with instructions: a message item, usage, and the stored response to retrieve', async () => {
    const response = await client.responses.create({
      model: MODEL,
      instructions: 'You tell stories.',
      input: 'Once upon a time',
      max_output_tokens: 24,
      temperature: 0,
    });
    expect(response.object).toBe('response');
    expect(response.id).toMatch(/^resp_/);
    expect(['completed', 'incomplete']).toContain(response.status);
    const [message] = response.output;
    expect(message).toMatchObject({ type: 'message', role: 'assistant', status: response.status });
    expect(response.output_text.length).toBeGreaterThan(0);
    expect(response.usage?.output_tokens).toBeGreaterThan(0);
    expect(response.usage?.total_tokens).toBe(
      (response.usage?.input_tokens ?? 0) + (response.usage?.output_tokens ?? 0),
    );
    expect(response.instructions).toBe('You tell stories.');
    if (response.status === 'incomplete') expect(response.incomplete_details?.reason).toBe('max_output_tokens');

    const retrieved = await client.responses.retrieve(response.id);
    expect(retrieved.output_text).toBe(response.output_text);
    // Another key cannot read it, and cannot tell it exists.
    await expect(other.responses.retrieve(response.id)).rejects.toMatchObject({ status: 404 });
  });

  it('streams the Responses events in order, with the same text as without streaming', async () => {
    const request = { model: MODEL, input: 'Once upon a time', max_output_tokens: 24, temperature: 0 };
    const whole = await client.responses.create(request);
    const events: { type: string; sequence_number: number; delta?: string }[] = [];
    for await (const event of await client.responses.create({ ...request, stream: true })) events.push(event);
    const types = events.map((event) => event.type);
    expect(types.slice(0, 4)).toEqual([
      'response.created',
      'response.in_progress',
      'response.output_item.added',
      'response.content_part.added',
    ]);
    expect(types.slice(-4)).toEqual([
      'response.output_text.done',
      'response.content_part.done',
      'response.output_item.done',
      whole.status === 'completed' ? 'response.completed' : 'response.incomplete',
    ]);
    expect(events.map((event) => event.sequence_number)).toEqual(events.map((_, index) => index));
    const deltas = events.filter((event) => event.type === 'response.output_text.delta');
    expect(deltas.length).toBeGreaterThan(1);
    expect(deltas.map((event) => event.delta).join('')).toBe(whole.output_text);
  });

  it('continues a stored conversation with previous_response_id, and refuses unknown or foreign ids', async () => {
    const first = await client.responses.create({ model: MODEL, input: 'Tom had a red ball.', max_output_tokens: 8 });
    const alone = await client.responses.create({ model: MODEL, input: 'What did Tom have?', max_output_tokens: 8 });
    const next = await client.responses.create({
      model: MODEL,
      previous_response_id: first.id,
      input: 'What did Tom have?',
      max_output_tokens: 8,
    });
    expect(next.previous_response_id).toBe(first.id);
    // The first turn and its answer are in the prompt.
    expect(next.usage?.input_tokens).toBeGreaterThan((alone.usage?.input_tokens ?? 0) + 5);

    await expect(
      client.responses.create({ model: MODEL, previous_response_id: 'resp_nope', input: 'Hi', max_output_tokens: 4 }),
    ).rejects.toMatchObject({ status: 404, param: 'previous_response_id' });
    await expect(
      other.responses.create({ model: MODEL, previous_response_id: first.id, input: 'Hi', max_output_tokens: 4 }),
    ).rejects.toMatchObject({ status: 404 });
    const unstored = await client.responses.create({ model: MODEL, input: 'Hi', max_output_tokens: 4, store: false });
    await expect(client.responses.retrieve(unstored.id)).rejects.toMatchObject({ status: 404 });
  });

  it('runs a tool loop: a forced call with schema-valid arguments, then an answer to its output', async () => {
    const called = await client.responses.create({
      model: MODEL,
      input: 'What is the weather in Paris?',
      tools: [weather],
      tool_choice: 'required',
      max_output_tokens: 128,
    });
    expect(called.status).toBe('completed');
    const call = called.output.find((item) => item.type === 'function_call');
    expect(call).toMatchObject({ type: 'function_call', name: 'get_weather', status: 'completed' });
    if (call?.type !== 'function_call') throw new Error('no call');
    expect(call.call_id.length).toBeGreaterThan(0);
    const args = z.object({ city: z.string() }).strict().parse(JSON.parse(call.arguments));

    const answered = await client.responses.create({
      model: MODEL,
      previous_response_id: called.id,
      input: [{ type: 'function_call_output', call_id: call.call_id, output: `Sunny in ${args.city}` }],
      tools: [weather],
      max_output_tokens: 16,
    });
    expect(answered.output.some((item) => item.type === 'message')).toBe(true);
    expect(answered.output_text.length).toBeGreaterThan(0);
    // The call and its output are in the prompt of the answer.
    expect(answered.usage?.input_tokens).toBeGreaterThan(called.usage?.input_tokens ?? 0);
  });

  it('streams a forced call as function_call events', async () => {
    const events: { type: string; delta?: string; arguments?: string }[] = [];
    const stream = await client.responses.create({
      model: MODEL,
      input: 'Weather?',
      tools: [weather],
      tool_choice: { type: 'function', name: 'get_weather' },
      max_output_tokens: 128,
      stream: true,
    });
    for await (const event of stream) events.push(event);
    const deltas = events.filter((event) => event.type === 'response.function_call_arguments.delta');
    const done = events.find((event) => event.type === 'response.function_call_arguments.done');
    expect(deltas.length).toBeGreaterThan(0);
    expect(deltas.map((event) => event.delta).join('')).toBe(done?.arguments);
    expect(JSON.parse(done?.arguments ?? '')).toMatchObject({ city: expect.any(String) });
    expect(events.at(-1)?.type).toBe('response.completed');
  });

  it('fills a schema with responses.parse (text.format json_schema, grammar-constrained)', async () => {
    const Story = z.object({ title: z.string(), tags: z.array(z.string()).max(3) });
    const parsed = await client.responses.parse({
      model: MODEL,
      input: 'Name a story and tag it.',
      text: { format: zodTextFormat(Story, 'story') },
      max_output_tokens: 200,
      temperature: 0,
    });
    expect(parsed.status).toBe('completed');
    expect(Story.parse(parsed.output_parsed)).toEqual(parsed.output_parsed);
  });

  it('marks a call cut by max_output_tokens incomplete, and a conversation goes on from it without it', async () => {
    const cut = await client.responses.create({
      model: MODEL,
      input: 'Weather?',
      tools: [weather],
      tool_choice: 'required',
      // Enough for the call's name, not for its arguments.
      max_output_tokens: 40,
    });
    expect(cut).toMatchObject({ status: 'incomplete', incomplete_details: { reason: 'max_output_tokens' } });
    expect(cut.output.find((item) => item.type === 'function_call')?.status).toBe('incomplete');
    // Cut before the call's name was whole: no item, but its tokens are counted.
    const early = await client.responses.create({
      model: MODEL,
      input: 'Weather?',
      tools: [weather],
      tool_choice: 'required',
      max_output_tokens: 10,
    });
    expect(early.output).toEqual([]);
    expect(early.usage?.output_tokens).toBe(10);
    const next = await client.responses.create({
      model: MODEL,
      previous_response_id: cut.id,
      input: 'Hi',
      max_output_tokens: 4,
    });
    expect(next.output.length).toBeGreaterThan(0);
  });

  it('bounds what it stores: metadata as OpenAI does, a conversation as a session', async () => {
    const tooManyKeys = Object.fromEntries(Array.from({ length: 17 }, (_, index) => [`k${index}`, 'v']));
    await expect(
      client.responses.create({ model: MODEL, input: 'Hi', max_output_tokens: 4, metadata: tooManyKeys }),
    ).rejects.toMatchObject({ status: 400, message: expect.stringContaining('at most 16 keys') });
    // 256,500 characters: over the session bound (256,000), within the body bound (256 KiB).
    const long = Array.from({ length: 9 }, () => ({ role: 'user' as const, content: 'w'.repeat(28_500) }));
    await expect(client.responses.create({ model: MODEL, input: long, max_output_tokens: 4 })).rejects.toMatchObject({
      status: 413,
      message: expect.stringContaining('--max-session-chars'),
    });
    const malformed = await fetch(`${harness.httpUrl}/v1/responses/%E0%A4`, {
      headers: { authorization: `Bearer ${KEY}` },
    });
    expect(malformed.status).toBe(404);
  });

  it('refuses what it cannot do, naming the field', async () => {
    const refused = (body: Record<string, unknown>) =>
      client.responses.create({ model: MODEL, max_output_tokens: 4, ...body } as never);
    await expect(
      refused({ input: [{ role: 'user', content: [{ type: 'input_image', image_url: 'https://x/y.png' }] }] }),
    ).rejects.toMatchObject({ status: 400, code: 'unsupported_parameter', param: 'input[0].content[0].type' });
    await expect(refused({ input: 'Hi', tools: [{ type: 'web_search' }] })).rejects.toMatchObject({
      status: 400,
      param: 'tools[0].type',
    });
    await expect(refused({ input: 'Hi', include: ['reasoning.encrypted_content'] })).rejects.toMatchObject({
      status: 400,
      param: 'include',
    });
    await expect(refused({ input: 'Hi', background: true })).rejects.toMatchObject({
      status: 400,
      param: 'background',
    });
    await expect(
      refused({ input: 'Hi', tools: [{ ...weather, parameters: { type: 'string', pattern: '^a+$' } }] }),
    ).rejects.toMatchObject({ status: 400, param: 'tools[0].parameters', message: expect.stringContaining('pattern') });
    await expect(
      refused({ input: [{ type: 'function_call_output', call_id: 'call_x', output: 'late' }] }),
    ).rejects.toMatchObject({ status: 400, message: expect.stringContaining('no function call "call_x"') });
    await expect(refused({ input: [{ type: 'item_reference', id: 'msg_nothing_0' }] })).rejects.toMatchObject({
      status: 404,
    });
    await expect(
      refused({ input: 'Hi', tools: [weather], tool_choice: { type: 'function', name: 'get_time' } }),
    ).rejects.toMatchObject({ status: 400, param: 'tool_choice' });
    await expect(refused({ input: [{ type: 'computer_call_output', call_id: 'c' }] })).rejects.toMatchObject({
      status: 400,
      code: 'unsupported_parameter',
    });
  });

  describe("the Vercel AI SDK's default OpenAI provider (which speaks the Responses API)", () => {
    /** The request bodies the SDK sent, to see how it refers to earlier steps. */
    const sent: { input?: { type?: string }[] }[] = [];
    const recording: typeof fetch = (url, init) => {
      if (typeof init?.body === 'string') sent.push(JSON.parse(init.body));
      return fetch(url, init);
    };
    const model = () => createOpenAI({ baseURL: `${harness.httpUrl}/v1`, apiKey: KEY, fetch: recording })(MODEL);

    it('answers generateText and streams streamText with the same text', async () => {
      const text = await generateText({
        model: model(),
        prompt: 'Once upon a time',
        maxOutputTokens: 16,
        temperature: 0,
      });
      expect(text.text.length).toBeGreaterThan(0);
      expect(text.usage.outputTokens).toBeGreaterThan(0);
      const streamed = streamText({ model: model(), prompt: 'Once upon a time', maxOutputTokens: 16, temperature: 0 });
      let joined = '';
      for await (const part of streamed.textStream) joined += part;
      expect(joined).toBe(text.text);
    });

    it('runs an agent loop with tools and stopWhen: the model calls, the SDK runs the tool, the model answers', async () => {
      const cities: string[] = [];
      const result = await generateText({
        model: model(),
        prompt: 'What is the weather in Paris?',
        tools: {
          get_weather: tool({
            description: 'The weather in a city',
            inputSchema: z.object({ city: z.string().max(24) }),
            execute: async ({ city }) => {
              cities.push(city);
              return `Sunny in ${city}`;
            },
          }),
        },
        // The tiny model never calls on its own: the first step forces the call, the next ones may answer.
        prepareStep: ({ stepNumber }) => (stepNumber === 0 ? { toolChoice: 'required' } : { toolChoice: 'none' }),
        stopWhen: stepCountIs(3),
        maxOutputTokens: 128,
      });
      expect(cities).toHaveLength(1);
      expect(result.steps[0]?.toolCalls[0]).toMatchObject({ toolName: 'get_weather' });
      expect(result.steps.at(-1)?.finishReason).not.toBe('tool-calls');
      expect(result.steps.length).toBe(2);
      // The SDK stores by default, so its second step refers to the first step's call by id (item_reference).
      const kinds = sent.at(-1)?.input?.map((item) => item.type ?? 'message');
      expect(kinds).toEqual(['message', 'item_reference', 'function_call_output']);
      expect(result.text.length).toBeGreaterThan(0);
    });

    it('fills a schema with Output.object', async () => {
      const shape = z.object({ title: z.string(), tags: z.array(z.string()).max(3) });
      const result = await generateText({
        model: model(),
        prompt: 'Name a story and tag it.',
        experimental_output: Output.object({ schema: shape }),
        maxOutputTokens: 200,
        temperature: 0,
      });
      expect(shape.parse(result.experimental_output)).toEqual(result.experimental_output);
    });
  });
});
