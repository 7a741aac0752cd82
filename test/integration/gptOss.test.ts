import { basename } from 'node:path';
import { Tiktoken } from 'js-tiktoken/lite';
import o200k from 'js-tiktoken/ranks/o200k_base';
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ServerFrame } from '../../protocol/index.js';
import {
  gptOssSynthetic,
  HARMONY_SCRIPT,
  harmonyScripted,
  syntheticModelsUnavailable,
} from '../../tooling/syntheticModels.js';
import { type Answer, chat, nextId, openSession } from '../helpers/conversation.js';
import { startTestServer } from '../helpers/startTestServer.js';
import { TestClient } from '../helpers/TestClient.js';

// gpt-oss-20b's path, proven without its 12 GB: both models are written by `npm run models:synthetic`
// (numpy and the bundled llama.cpp's gguf-py; a minute the first time, cached after) and run through the
// server's normal path: node-llama-cpp picks its Harmony chat wrapper from the GGUF's chat template.
const unavailable = syntheticModelsUnavailable();
if (unavailable !== undefined) console.warn(`gptOss.test.ts skipped: ${unavailable}`);
const WRITE_MODEL_MS = 180_000;

describe.skipIf(unavailable !== undefined)('a synthetic gpt-oss model (random weights, the real layout)', () => {
  let harness: Awaited<ReturnType<typeof startTestServer>>;
  let modelPath: string;
  beforeAll(async () => {
    modelPath = gptOssSynthetic();
    harness = await startTestServer({ modelPath });
  }, WRITE_MODEL_MS);
  afterAll(() => harness?.stop());

  it("loads as gpt-oss with Harmony's chat format: the welcome says it reasons, and a chat completes", async () => {
    const client = await TestClient.connect(harness.wsUrl);
    expect(client.welcome.model).toMatchObject({ name: basename(modelPath, '.gguf'), reasoning: true });
    const { sessionId } = await openSession(client);
    const answer = await chat(client, sessionId, 'Hello there', { maxTokens: 12, reasoning: 'low' });
    expect(['stop', 'length']).toContain(answer.done.finish);
    expect(answer.done.usage.completionTokens).toBeGreaterThan(0);
    expect(answer.done.usage.promptTokens).toBeGreaterThan(20);
    for (const frame of client.frames) expect(ServerFrame.safeParse(frame).success).toBe(true);
    await client.close();
  });

  it("gives the sampled token's logprob, and refuses alternatives from its 201,088-token vocabulary", async () => {
    const openai = new OpenAI({ apiKey: 'unused', baseURL: `${harness.httpUrl}/v1`, maxRetries: 0 });
    const messages = [{ role: 'user' as const, content: 'Hello' }];
    const answer = await openai.chat.completions.create({
      messages,
      model: basename(modelPath, '.gguf'),
      max_tokens: 4,
      logprobs: true,
    });
    for (const entry of answer.choices[0]?.logprobs?.content ?? []) expect(entry.logprob).toBeLessThanOrEqual(0);
    await expect(
      openai.chat.completions.create({
        messages,
        model: basename(modelPath, '.gguf'),
        max_tokens: 4,
        logprobs: true,
        top_logprobs: 2,
      }),
    ).rejects.toMatchObject({ status: 400, code: 'unsupported_parameter', param: 'top_logprobs' });
  });
});

describe.skipIf(unavailable !== undefined)('a scripted Harmony model (weights set by hand to write one reply)', () => {
  let harness: Awaited<ReturnType<typeof startTestServer>>;
  beforeAll(async () => {
    harness = await startTestServer({ modelPath: harmonyScripted() });
  }, WRITE_MODEL_MS);
  afterAll(() => harness?.stop());

  it('streams the analysis as reasoning token frames, then the final answer as content', async () => {
    const client = await TestClient.connect(harness.wsUrl);
    expect(client.welcome.model.reasoning).toBe(true);
    const { sessionId } = await openSession(client);
    const answer = await chat(client, sessionId, 'Hi there', { temperature: 0 });
    expect(answer.done.finish).toBe('stop');
    expect(textOf(answer, 'reasoning')).toBe(HARMONY_SCRIPT.thought('medium'));
    expect(textOf(answer, 'content')).toBe(HARMONY_SCRIPT.answer);
    const channels = answer.tokens.map((token) => token.channel);
    expect(channels.indexOf('content')).toBe(channels.lastIndexOf('reasoning') + 1);
    await client.close();
  });

  it('puts each reasoning level into the prompt the model reads, and medium when none is asked for', async () => {
    // The model's thought names the level it finds in its prompt ("Reasoning: low" in Harmony's system
    // message): what node-llama-cpp rendered and evaluated, not what the server meant to send.
    const client = await TestClient.connect(harness.wsUrl);
    for (const level of ['low', 'medium', 'high', undefined] as const) {
      const { sessionId } = await openSession(client);
      const params = level === undefined ? {} : { reasoning: level };
      const answer = await chat(client, sessionId, 'Hi there', { temperature: 0, ...params });
      expect(textOf(answer, 'reasoning')).toBe(HARMONY_SCRIPT.thought(level ?? 'medium'));
      expect(textOf(answer, 'content')).toBe(HARMONY_SCRIPT.answer);
    }
    await client.close();
  });

  it("keeps only the final answer in the history, so the next turn's prompt holds no earlier thought", async () => {
    const client = await TestClient.connect(harness.wsUrl);
    const opened = await openSession(client);
    const message = 'Hi there';
    const first = await chat(client, opened.sessionId, message, { temperature: 0, reasoning: 'high' });
    const second = await chat(client, opened.sessionId, message, { temperature: 0, reasoning: 'high' });

    // The model writes `final` at once when `analysis` is in its prompt: a second thought shows there was none.
    expect(textOf(second, 'reasoning')).toBe(HARMONY_SCRIPT.thought('high'));
    expect(textOf(second, 'content')).toBe(HARMONY_SCRIPT.answer);
    // The second prompt is the first plus the answer as a final message and the new user message:
    // <|start|>assistant<|channel|>final<|message|>ANSWER<|end|> and <|start|>user<|message|>MESSAGE<|end|>.
    const o200kTokens = new Tiktoken(o200k);
    const added = 6 + o200kTokens.encode(HARMONY_SCRIPT.answer).length + 4 + o200kTokens.encode(message).length;
    expect(second.done.usage.promptTokens - first.done.usage.promptTokens).toBe(added);
    // Its own sequence kept the first prompt's cache, across gpt-oss's sliding-window layer.
    expect(second.done.usage.cachedPromptTokens).toBeGreaterThanOrEqual(first.done.usage.promptTokens);

    const other = await TestClient.connect(harness.wsUrl);
    const id = nextId('reattach');
    other.send({ type: 'session.open', id, sessionId: opened.sessionId, resumeToken: opened.resumeToken });
    const reopened = await other.next('session.opened', (frame) => frame.id === id);
    const turn = [
      { role: 'user', content: message },
      { role: 'assistant', content: HARMONY_SCRIPT.answer },
    ];
    expect(reopened.history).toEqual([...turn, ...turn]);
    await Promise.all([client.close(), other.close()]);
  });

  it('answers with reasoning_content beside content on the OpenAI API, streamed and not', async () => {
    const openai = new OpenAI({ apiKey: 'unused', baseURL: `${harness.httpUrl}/v1`, maxRetries: 0 });
    const request = {
      model: basename(harmonyScripted(), '.gguf'),
      messages: [{ role: 'user' as const, content: 'Hi there' }],
      temperature: 0,
      reasoning_effort: 'low' as const,
    };
    const whole = await openai.chat.completions.create(request);
    const message = whole.choices[0]?.message as
      | (OpenAI.ChatCompletionMessage & { reasoning_content?: string })
      | undefined;
    expect(message?.content).toBe(HARMONY_SCRIPT.answer);
    expect(message?.reasoning_content).toBe(HARMONY_SCRIPT.thought('low'));
    expect(whole.choices[0]?.finish_reason).toBe('stop');

    const deltas: { channel: 'reasoning' | 'content'; text: string }[] = [];
    for await (const chunk of await openai.chat.completions.create({ ...request, stream: true })) {
      const delta = chunk.choices[0]?.delta as { content?: string | null; reasoning_content?: string } | undefined;
      if (delta?.reasoning_content) deltas.push({ channel: 'reasoning', text: delta.reasoning_content });
      if (delta?.content) deltas.push({ channel: 'content', text: delta.content });
    }
    const joined = (channel: string) =>
      deltas
        .filter((delta) => delta.channel === channel)
        .map((delta) => delta.text)
        .join('');
    expect(joined('reasoning')).toBe(HARMONY_SCRIPT.thought('low'));
    expect(joined('content')).toBe(HARMONY_SCRIPT.answer);
    expect(deltas.findIndex((delta) => delta.channel === 'content')).toBe(
      deltas.findLastIndex((delta) => delta.channel === 'reasoning') + 1,
    );
  });
});

function textOf(answer: Answer, channel: 'reasoning' | 'content'): string {
  return answer.tokens
    .filter((token) => token.channel === channel)
    .map((token) => token.text)
    .join('');
}
