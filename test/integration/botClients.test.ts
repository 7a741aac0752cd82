import { basename } from 'node:path';
import { createOpenAICompatible } from '@ai-sdk/openai-compatible';
import { type BaseMessage, HumanMessage, ToolMessage } from '@langchain/core/messages';
import { ChatOpenAI } from '@langchain/openai';
import { generateObject, generateText, stepCountIs, streamText, tool } from 'ai';
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { ChatClient } from '../../client/ChatClient.js';
import { nodeSockets } from '../../client/node.js';
import {
  HARMONY_TOOLS_SCRIPT,
  harmonyToolsScripted,
  syntheticModelsUnavailable,
} from '../../tooling/syntheticModels.js';
import { startTestServer } from '../helpers/startTestServer.js';

const KEY = 'sk-test-bot-clients-0123456789';

/**
 * The clients bots are written in, unmodified, against the real server and the tiny model: the
 * Vercel AI SDK (through its OpenAI-compatible provider) and LangChain's ChatOpenAI. The tiny
 * model writes nonsense; what is checked is that each client gets well-formed answers, streams,
 * usage and structured output of the schema's shape.
 */
describe('bot clients: the Vercel AI SDK and LangChain', () => {
  let harness: Awaited<ReturnType<typeof startTestServer>>;
  let baseURL: string;
  beforeAll(async () => {
    harness = await startTestServer({ apiKeys: KEY });
    baseURL = `${harness.httpUrl}/v1`;
  });
  afterAll(() => harness.stop());

  const shape = z.object({ title: z.string(), tags: z.array(z.string()).max(3) });

  it('answers generateText and streams streamText through @ai-sdk/openai-compatible', async () => {
    const provider = createOpenAICompatible({ name: 'llm-chat', baseURL, apiKey: KEY });
    const model = provider('stories260K');
    const text = await generateText({ model, prompt: 'Once upon a time', maxOutputTokens: 16, temperature: 0 });
    expect(text.text.length).toBeGreaterThan(0);
    expect(text.usage.outputTokens).toBeGreaterThan(0);
    const streamed = streamText({ model, prompt: 'Once upon a time', maxOutputTokens: 16, temperature: 0 });
    const parts: string[] = [];
    for await (const part of streamed.textStream) parts.push(part);
    expect(parts.length).toBeGreaterThan(1);
    // Temperature 0 and the same prompt: the stream is the same answer.
    expect(parts.join('')).toBe(text.text);
  });

  it('fills a schema with generateObject (json_schema, grammar-constrained)', async () => {
    const provider = createOpenAICompatible({
      name: 'llm-chat',
      baseURL,
      apiKey: KEY,
      supportsStructuredOutputs: true,
    });
    const { object, finishReason } = await generateObject({
      model: provider('stories260K'),
      schema: shape,
      prompt: 'Name a story and tag it.',
      maxOutputTokens: 200,
      temperature: 0,
    });
    expect(finishReason).toBe('stop');
    expect(shape.parse(object)).toEqual(object);
  });

  it('invokes, streams and fills a schema with LangChain ChatOpenAI', async () => {
    const chat = new ChatOpenAI({
      model: 'stories260K',
      apiKey: KEY,
      configuration: { baseURL },
      maxTokens: 16,
      temperature: 0,
    });
    const reply = await chat.invoke('Once upon a time');
    expect(typeof reply.content).toBe('string');
    expect(String(reply.content).length).toBeGreaterThan(0);
    const chunks: string[] = [];
    for await (const chunk of await chat.stream('Once upon a time')) chunks.push(String(chunk.content));
    expect(chunks.join('')).toBe(reply.content);

    const structured = new ChatOpenAI({
      model: 'stories260K',
      apiKey: KEY,
      configuration: { baseURL },
      maxTokens: 200,
      temperature: 0,
    }).withStructuredOutput(shape, { method: 'jsonSchema' });
    expect(shape.parse(await structured.invoke('Name a story and tag it.'))).toBeDefined();
  });

  it('meets a refused field as a clear error in the client, not a silent default', async () => {
    const chat = new ChatOpenAI({
      model: 'stories260K',
      apiKey: KEY,
      configuration: { baseURL },
      maxTokens: 8,
      presencePenalty: 0.5,
    });
    await expect(chat.invoke('Hi')).rejects.toThrow(/presence_penalty/);
  });
});

/**
 * Agent loops (the model calls a tool, the client runs it, the model answers) in each client,
 * unmodified. The tiny model never calls a tool on its own, so each step's tool choice is set
 * where the client allows it: forced for the call, 'none' for the answer.
 */
describe('bot clients: tool calls on the tiny model, with forced choices', () => {
  let harness: Awaited<ReturnType<typeof startTestServer>>;
  let baseURL: string;
  beforeAll(async () => {
    harness = await startTestServer({ apiKeys: KEY });
    baseURL = `${harness.httpUrl}/v1`;
  }, 120_000);
  afterAll(() => harness.stop());

  const city = z.object({ city: z.string() });
  const weatherParameters = { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] };
  const question = 'What is the weather in Paris?';

  it('runs a loop with openai: runTools with the named function, then the answer after its result', async () => {
    const client = new OpenAI({ baseURL, apiKey: KEY });
    const cities: string[] = [];
    const runner = client.chat.completions.runTools({
      model: 'stories260K',
      messages: [{ role: 'user', content: question }],
      tool_choice: { type: 'function', function: { name: 'get_weather' } },
      max_tokens: 200,
      tools: [
        {
          type: 'function',
          function: {
            name: 'get_weather',
            description: 'The weather in a city',
            parameters: weatherParameters,
            parse: (text: string) => city.parse(JSON.parse(text)),
            function: ({ city: name }: z.infer<typeof city>) => {
              cities.push(name);
              return 'Sunny, 21 degrees';
            },
          },
        },
      ],
    });
    await runner.done();
    expect(cities).toHaveLength(1);
    // runTools stops after the one call a named function asks for; the answer is the next request.
    const history = runner.messages;
    expect(history.at(-1)).toMatchObject({ role: 'tool', content: 'Sunny, 21 degrees' });
    const answer = await client.chat.completions.create({
      model: 'stories260K',
      messages: history,
      tools: [{ type: 'function', function: { name: 'get_weather', parameters: weatherParameters } }],
      tool_choice: 'none',
      max_tokens: 16,
    });
    expect(answer.choices[0]?.message.content?.length).toBeGreaterThan(0);
  });

  it('assembles a streamed call with openai chat.completions.stream', async () => {
    const client = new OpenAI({ baseURL, apiKey: KEY });
    const stream = client.chat.completions.stream({
      model: 'stories260K',
      messages: [{ role: 'user', content: question }],
      tools: [{ type: 'function', function: { name: 'get_weather', parameters: weatherParameters } }],
      tool_choice: 'required',
      max_tokens: 200,
    });
    const final = await stream.finalChatCompletion();
    expect(final.choices[0]?.finish_reason).toBe('tool_calls');
    const call = final.choices[0]?.message.tool_calls?.[0];
    if (call?.type !== 'function') throw new Error('expected a function call');
    expect(call.function.name).toBe('get_weather');
    expect(city.safeParse(JSON.parse(call.function.arguments)).success).toBe(true);
  });

  it('runs a loop with the Vercel AI SDK: generateText, a tool, stopWhen and prepareStep', async () => {
    const provider = createOpenAICompatible({ name: 'llm-chat', baseURL, apiKey: KEY });
    const cities: string[] = [];
    const result = await generateText({
      model: provider('stories260K'),
      prompt: question,
      maxOutputTokens: 200,
      tools: {
        get_weather: tool({
          description: 'The weather in a city',
          inputSchema: city,
          execute: async ({ city: name }) => {
            cities.push(name);
            return 'Sunny, 21 degrees';
          },
        }),
      },
      // Step 0 must call the tool; the step after its result must answer.
      prepareStep: ({ stepNumber }) => ({
        toolChoice: stepNumber === 0 ? { type: 'tool', toolName: 'get_weather' } : 'none',
      }),
      stopWhen: stepCountIs(3),
    });
    expect(result.steps).toHaveLength(2);
    expect(result.steps[0]?.finishReason).toBe('tool-calls');
    expect(result.steps[0]?.toolResults[0]?.output).toBe('Sunny, 21 degrees');
    expect(cities).toHaveLength(1);
    expect(result.finishReason).not.toBe('tool-calls');
    expect(result.text.length).toBeGreaterThan(0);
  });

  it('runs a loop with LangChain: ChatOpenAI bindTools, a ToolMessage, then the answer', async () => {
    const chat = new ChatOpenAI({ model: 'stories260K', apiKey: KEY, configuration: { baseURL }, maxTokens: 200 });
    const weather = {
      type: 'function' as const,
      function: { name: 'get_weather', description: 'The weather in a city', parameters: weatherParameters },
    };
    const messages: BaseMessage[] = [new HumanMessage(question)];
    const calling = await chat.bindTools([weather], { tool_choice: 'get_weather' }).invoke(messages);
    expect(calling.tool_calls).toHaveLength(1);
    const [call] = calling.tool_calls ?? [];
    expect(call?.name).toBe('get_weather');
    expect(city.safeParse(call?.args).success).toBe(true);
    messages.push(calling, new ToolMessage({ content: 'Sunny, 21 degrees', tool_call_id: call?.id ?? '' }));
    const answer = await chat.bindTools([weather], { tool_choice: 'none' }).invoke(messages);
    expect(answer.tool_calls ?? []).toHaveLength(0);
    expect(String(answer.content).length).toBeGreaterThan(0);
  });
});

const scriptedUnavailable = syntheticModelsUnavailable();
if (scriptedUnavailable !== undefined)
  console.warn(`botClients.test.ts: the auto tool loops skipped: ${scriptedUnavailable}`);

/**
 * Full `auto` agent loops on the scripted tool-calling Harmony model (tooling/syntheticModels.ts):
 * at temperature 0 it calls get_weather({"city":"Paris"}) through its own chat format while the
 * conversation holds no tool result, and answers in its final channel once it holds one. Nothing
 * forces a call: the server offers the tools through node-llama-cpp's function calling.
 */
describe.skipIf(scriptedUnavailable !== undefined)('bot clients: auto tool loops on a tool-calling model', () => {
  let harness: Awaited<ReturnType<typeof startTestServer>>;
  let baseURL: string;
  let model: string;
  beforeAll(async () => {
    const modelPath = harmonyToolsScripted();
    model = basename(modelPath, '.gguf');
    harness = await startTestServer({ apiKeys: KEY, modelPath });
    baseURL = `${harness.httpUrl}/v1`;
  }, 300_000);
  afterAll(() => harness?.stop());

  const script = HARMONY_TOOLS_SCRIPT;
  // A mutable copy: the clients' types want one.
  const parameters: Record<string, unknown> = structuredClone(script.functionParams);
  const city = z.object({ city: z.string() });
  const question = 'What is the weather in Paris?';
  const weatherReport = JSON.stringify({ condition: 'sunny', celsius: 21 });

  it('openai runTools: the model calls get_weather, the runner runs it, the model answers', async () => {
    const client = new OpenAI({ baseURL, apiKey: KEY });
    const cities: string[] = [];
    const runner = client.chat.completions.runTools({
      model,
      temperature: 0,
      max_tokens: 100,
      messages: [{ role: 'user', content: question }],
      tools: [
        {
          type: 'function',
          function: {
            name: script.functionName,
            description: script.functionDescription,
            parameters,
            parse: (text: string) => city.parse(JSON.parse(text)),
            function: ({ city: name }: z.infer<typeof city>) => {
              cities.push(name);
              return weatherReport;
            },
          },
        },
      ],
    });
    expect(await runner.finalContent()).toBe(script.answer);
    expect(cities).toEqual(['Paris']);
    const calls = runner.messages.filter((message) => message.role === 'assistant' && 'tool_calls' in message);
    expect(calls).toHaveLength(1);
  }, 120_000);

  it('the Vercel AI SDK: generateText with a tool and stopWhen runs the call and the answer', async () => {
    const provider = createOpenAICompatible({ name: 'llm-chat', baseURL, apiKey: KEY });
    const result = await generateText({
      model: provider(model),
      prompt: question,
      temperature: 0,
      maxOutputTokens: 100,
      tools: {
        [script.functionName]: tool({
          description: script.functionDescription,
          inputSchema: city,
          execute: async () => weatherReport,
        }),
      },
      stopWhen: stepCountIs(4),
    });
    expect(result.steps).toHaveLength(2);
    expect(result.steps[0]?.toolCalls[0]).toMatchObject({ toolName: 'get_weather', input: { city: 'Paris' } });
    expect(result.text).toBe(script.answer);
    expect(result.finishReason).toBe('stop');
  }, 120_000);

  it('LangChain: bindTools, the call run by hand as a ToolMessage, then the answer', async () => {
    const chat = new ChatOpenAI({ model, apiKey: KEY, configuration: { baseURL }, maxTokens: 100, temperature: 0 });
    const bound = chat.bindTools([
      {
        type: 'function',
        function: { name: script.functionName, description: script.functionDescription, parameters },
      },
    ]);
    const messages: BaseMessage[] = [new HumanMessage(question)];
    const calling = await bound.invoke(messages);
    expect(calling.tool_calls).toMatchObject([{ name: 'get_weather', args: { city: 'Paris' } }]);
    const [call] = calling.tool_calls ?? [];
    messages.push(calling, new ToolMessage({ content: weatherReport, tool_call_id: call?.id ?? '' }));
    const answer = await bound.invoke(messages);
    expect(answer.tool_calls ?? []).toHaveLength(0);
    expect(answer.content).toBe(script.answer);
  }, 120_000);

  it("the project's ChatClient: tool.call, tool.result, then the answer", async () => {
    const client = await ChatClient.connect(harness.wsUrl, { createSocket: nodeSockets({ apiKey: KEY }) });
    try {
      const { sessionId } = await client.openSession();
      const tools = [{ name: script.functionName, description: script.functionDescription, parameters }];
      let generation = client.chat(sessionId, question, { tools, temperature: 0, maxTokens: 100 });
      const steps: string[] = [];
      for (let step = 0; step < 4; step++) {
        const done = await generation.done;
        steps.push(done.finish);
        if (done.finish !== 'tool_calls') break;
        const results = generation.toolCalls.map((call) => ({ callId: call.callId, content: weatherReport }));
        expect(generation.toolCalls.map((call) => JSON.parse(call.arguments))).toEqual([{ city: 'Paris' }]);
        generation = client.sendToolResults(sessionId, results);
      }
      expect(steps).toEqual(['tool_calls', 'stop']);
      expect(await generation.text()).toBe(script.answer);
    } finally {
      await client.close();
    }
  }, 120_000);
});
