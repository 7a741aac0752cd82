import { createOpenAICompatible } from '@ai-sdk/openai-compatible';
import { ChatOpenAI } from '@langchain/openai';
import { generateObject, generateText, streamText } from 'ai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
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
      logprobs: true,
    });
    await expect(chat.invoke('Hi')).rejects.toThrow(/logprobs/);
  });
});
