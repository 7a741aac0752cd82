import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Token, TokenAlternative } from '../../protocol/index.js';
import { collect, nextId, openSession, startChat } from '../helpers/conversation.js';
import { startTestServer } from '../helpers/startTestServer.js';
import { TestClient } from '../helpers/TestClient.js';

const MODEL = 'stories260K';
const messages = [{ role: 'user' as const, content: 'Once upon a time' }];

type Alternative = { token: string; logprob: number; bytes: number[] | null };

/** What every token's entry must be: a log probability, and the bytes of its text. */
function expectTokenEntry(entry: Alternative): void {
  expect(entry.logprob).toBeLessThanOrEqual(0);
  expect(Number.isFinite(entry.logprob)).toBe(true);
  expect(entry.bytes).toEqual([...Buffer.from(entry.token, 'utf8')]);
}

/** Sorted, likeliest first, as many as asked (greedy decoding sees the whole distribution). */
function expectTop(top: readonly Alternative[], asked: number): void {
  expect(top).toHaveLength(asked);
  for (const alternative of top) expectTokenEntry(alternative);
  for (let index = 1; index < top.length; index++) {
    expect(top[index]?.logprob).toBeLessThanOrEqual(top[index - 1]?.logprob ?? 0);
  }
}

describe('logprobs on the OpenAI-compatible API, through the openai client', () => {
  let harness: Awaited<ReturnType<typeof startTestServer>>;
  let client: OpenAI;
  beforeAll(async () => {
    harness = await startTestServer();
    client = new OpenAI({ apiKey: 'unused', baseURL: `${harness.httpUrl}/v1`, maxRetries: 0 });
  });
  afterAll(() => harness.stop());

  it('gives each token of a chat answer its logprob, bytes and the top alternatives, the greedy pick first', async () => {
    const completion = await client.chat.completions.create({
      model: MODEL,
      messages,
      max_tokens: 16,
      temperature: 0,
      logprobs: true,
      top_logprobs: 3,
    });
    const choice = completion.choices[0];
    const content = choice?.logprobs?.content ?? [];
    expect(content.length).toBeGreaterThan(0);
    expect(content).toHaveLength(completion.usage?.completion_tokens ?? -1);
    expect(content.map((entry) => entry.token).join('')).toBe(choice?.message.content);
    for (const entry of content) {
      expectTokenEntry(entry);
      expectTop(entry.top_logprobs, 3);
      // At temperature 0 the sampled token is the likeliest one.
      expect(entry.top_logprobs[0]).toEqual({ token: entry.token, logprob: entry.logprob, bytes: entry.bytes });
    }
  });

  it('streams a chat answer with each chunk carrying the logprobs of its own tokens, the same as unstreamed', async () => {
    const request = { model: MODEL, messages, max_tokens: 16, temperature: 0, logprobs: true, top_logprobs: 2 };
    const whole = await client.chat.completions.create(request);
    const stream = await client.chat.completions.create({ ...request, stream: true });
    const streamed: OpenAI.Chat.Completions.ChatCompletionTokenLogprob[] = [];
    let text = '';
    for await (const chunk of stream) {
      const choice = chunk.choices[0];
      const delta = choice?.delta.content ?? '';
      text += delta;
      const tokens = choice?.logprobs?.content ?? [];
      expect(tokens.map((entry) => entry.token).join('')).toBe(delta);
      streamed.push(...tokens);
    }
    expect(text).toBe(whole.choices[0]?.message.content);
    expect(streamed.map((entry) => entry.token)).toEqual(whole.choices[0]?.logprobs?.content?.map((e) => e.token));
    for (const entry of streamed) expectTop(entry.top_logprobs, 2);
  });

  it('lists no alternatives for top_logprobs 0 (the same logprobs, computed without the distribution), and none unless asked', async () => {
    const request = { model: MODEL, messages, max_tokens: 6, temperature: 0, logprobs: true };
    const bare = await client.chat.completions.create(request);
    const content = bare.choices[0]?.logprobs?.content ?? [];
    expect(content.length).toBeGreaterThan(0);
    for (const entry of content) expect(entry.top_logprobs).toEqual([]);
    const withTop = await client.chat.completions.create({ ...request, top_logprobs: 1 });
    const full = withTop.choices[0]?.logprobs?.content ?? [];
    expect(full.map((entry) => entry.token)).toEqual(content.map((entry) => entry.token));
    full.forEach((entry, index) => {
      expect(entry.logprob).toBeCloseTo(content[index]?.logprob ?? 1, 5);
    });
    const plain = await client.chat.completions.create({ model: MODEL, messages, max_tokens: 6, temperature: 0 });
    expect(plain.choices[0]?.logprobs).toBeNull();
    const text = await client.completions.create({ model: MODEL, prompt: 'Once', max_tokens: 6, temperature: 0 });
    expect(text.choices[0]?.logprobs).toBeNull();
  });

  it('reports a sampled token at temperature 1 with a logprob among its alternatives, which are sorted', async () => {
    const completion = await client.chat.completions.create({
      model: MODEL,
      messages,
      max_tokens: 16,
      temperature: 1,
      seed: 7,
      logprobs: true,
      top_logprobs: 20,
    });
    const content = completion.choices[0]?.logprobs?.content ?? [];
    expect(content.map((entry) => entry.token).join('')).toBe(completion.choices[0]?.message.content);
    for (const entry of content) {
      expectTokenEntry(entry);
      // The distribution sampled from (after top-k, top-p): as many as it holds, up to 20.
      expect(entry.top_logprobs.length).toBeGreaterThan(0);
      expect(entry.top_logprobs.length).toBeLessThanOrEqual(20);
      for (let index = 1; index < entry.top_logprobs.length; index++) {
        expect(entry.top_logprobs[index]?.logprob).toBeLessThanOrEqual(entry.top_logprobs[index - 1]?.logprob ?? 0);
      }
      expect(entry.logprob).toBeLessThanOrEqual(entry.top_logprobs[0]?.logprob ?? 0);
    }
  });

  it('gives completions the legacy shape: tokens, token_logprobs, top_logprobs and text_offset', async () => {
    const completion = await client.completions.create({
      model: MODEL,
      prompt: 'Once upon a time',
      max_tokens: 16,
      temperature: 0,
      logprobs: 2,
    });
    const choice = completion.choices[0];
    const logprobs = choice?.logprobs;
    const tokens = logprobs?.tokens ?? [];
    expect(tokens.length).toBe(completion.usage?.completion_tokens);
    expect(tokens.join('')).toBe(choice?.text);
    expect(logprobs?.token_logprobs).toHaveLength(tokens.length);
    expect(logprobs?.top_logprobs).toHaveLength(tokens.length);
    let offset = 0;
    tokens.forEach((token, index) => {
      expect(logprobs?.text_offset?.[index]).toBe(offset);
      offset += [...token].length;
      const logprob = logprobs?.token_logprobs?.[index] ?? 1;
      expect(logprob).toBeLessThanOrEqual(0);
      const top = logprobs?.top_logprobs?.[index] ?? {};
      // The two likeliest by text; greedy decoding picked the likeliest of them.
      expect(Object.keys(top).length).toBeGreaterThanOrEqual(1);
      expect(Object.keys(top).length).toBeLessThanOrEqual(2);
      expect(top[token]).toBe(logprob);
      expect(Math.max(...Object.values(top))).toBe(logprob);
    });
  });

  it('streams completions with logprobs whose text offsets run on across chunks', async () => {
    const request = { model: MODEL, prompt: 'Once upon a time', max_tokens: 16, temperature: 0, logprobs: 1 };
    const whole = await client.completions.create(request);
    const stream = await client.completions.create({ ...request, stream: true });
    const tokens: string[] = [];
    const offsets: number[] = [];
    for await (const chunk of stream) {
      const choice = chunk.choices[0];
      if (choice?.logprobs == null) continue;
      expect(choice.logprobs.tokens?.join('')).toBe(choice.text);
      tokens.push(...(choice.logprobs.tokens ?? []));
      offsets.push(...(choice.logprobs.text_offset ?? []));
    }
    expect(tokens).toEqual(whole.choices[0]?.logprobs?.tokens);
    expect(offsets).toEqual(whole.choices[0]?.logprobs?.text_offset);
  });

  it('refuses bad logprob values with a 400 naming the field', async () => {
    const base = { model: MODEL, messages, max_tokens: 4 };
    await expect(client.chat.completions.create({ ...base, logprobs: true, top_logprobs: 21 })).rejects.toMatchObject({
      status: 400,
      message: expect.stringContaining('top_logprobs'),
    });
    await expect(client.chat.completions.create({ ...base, logprobs: true, top_logprobs: -1 })).rejects.toMatchObject({
      status: 400,
      message: expect.stringContaining('top_logprobs'),
    });
    await expect(client.chat.completions.create({ ...base, top_logprobs: 2 })).rejects.toMatchObject({
      status: 400,
      message: expect.stringContaining('top_logprobs: needs logprobs: true'),
    });
    // 0 asks for nothing: accepted without logprobs, as some clients send it by default.
    const harmless = await client.chat.completions.create({ ...base, top_logprobs: 0 });
    expect(harmless.choices[0]?.logprobs).toBeNull();
    await expect(client.chat.completions.create({ ...base, logprobs: false, top_logprobs: 2 })).rejects.toMatchObject({
      status: 400,
      message: expect.stringContaining('needs logprobs: true'),
    });
    const prompt = { model: MODEL, prompt: 'Once', max_tokens: 4 };
    await expect(client.completions.create({ ...prompt, logprobs: 6 })).rejects.toMatchObject({
      status: 400,
      message: expect.stringContaining('logprobs'),
    });
    await expect(client.completions.create({ ...prompt, logprobs: -1 })).rejects.toMatchObject({
      status: 400,
      message: expect.stringContaining('logprobs'),
    });
    const chatField = {
      ...prompt,
      logprobs: 1,
      top_logprobs: 3,
    } as OpenAI.Completions.CompletionCreateParamsNonStreaming;
    await expect(client.completions.create(chatField)).rejects.toMatchObject({
      status: 400,
      code: 'unsupported_parameter',
      message: expect.stringContaining('top_logprobs: completions take logprobs'),
    });
  });
});

describe('logprobs in protocol v1, opted into by chat.send params', () => {
  let harness: Awaited<ReturnType<typeof startTestServer>>;
  let client: TestClient;
  beforeAll(async () => {
    harness = await startTestServer();
    client = await TestClient.connect(harness.wsUrl);
  });
  afterAll(async () => {
    await client.close();
    await harness.stop();
  });

  it('adds to each token frame one entry per token, with the asked number of alternatives', async () => {
    const { sessionId } = await openSession(client);
    const genId = await startChat(client, sessionId, 'Once upon a time', {
      temperature: 0,
      maxTokens: 16,
      logprobs: { top: 2 },
    });
    const answer = await collect(client, genId);
    expect(answer.tokens.length).toBeGreaterThan(0);
    let seq = 0;
    for (const frame of answer.tokens) {
      const logprobs = frame.logprobs ?? [];
      // A frame's seq advances by its tokens, each of which has an entry.
      expect(logprobs).toHaveLength(frame.seq - seq);
      seq = frame.seq;
      expect(logprobs.map((entry) => entry.token).join('')).toBe(frame.text);
      for (const entry of logprobs) {
        expectTokenEntry(entry);
        expectTop(entry.top, 2);
        expect(entry.top[0]).toEqual<TokenAlternative>({
          token: entry.token,
          logprob: entry.logprob,
          bytes: entry.bytes,
        });
      }
    }
    expect(seq).toBe(answer.done.usage.completionTokens);
  });

  it('replays a resumed answer as merged frames that keep every token’s logprobs', async () => {
    const { sessionId } = await openSession(client);
    const params = { temperature: 0, maxTokens: 16, logprobs: { top: 1 } };
    const live = await collect(client, await startChat(client, sessionId, 'Once upon a time', params));
    const id = nextId('resume');
    client.send({ type: 'generation.resume', id, genId: live.genId, afterSeq: 0 });
    await client.next('generation.done', (frame) => frame.genId === live.genId);
    const replayed = client.frames
      .filter((f): f is Token => f.type === 'token' && f.genId === live.genId)
      .slice(live.tokens.length);
    expect(replayed.length).toBeGreaterThan(0);
    expect(replayed.length).toBeLessThanOrEqual(live.tokens.length);
    const liveEntries = live.tokens.flatMap((frame) => frame.logprobs ?? []);
    const replayedEntries = replayed.flatMap((frame) => frame.logprobs ?? []);
    expect(replayedEntries).toEqual(liveEntries);
    expect(replayed.map((frame) => frame.text).join('')).toBe(live.text);
  });

  it('sends token frames without logprobs when not asked', async () => {
    const { sessionId } = await openSession(client);
    const answer = await collect(client, await startChat(client, sessionId, 'Once', { temperature: 0, maxTokens: 6 }));
    expect(answer.tokens.length).toBeGreaterThan(0);
    expect(answer.tokens.every((frame: Token) => frame.logprobs === undefined)).toBe(true);
  });

  it('refuses params.logprobs out of range or malformed with a bad_frame error', async () => {
    const { sessionId } = await openSession(client);
    for (const logprobs of [{ top: 21 }, { top: -1 }, { top: 1.5 }, {}, true]) {
      const id = nextId('bad');
      client.sendRaw(
        JSON.stringify({ type: 'chat.send', id, sessionId, content: 'Hi', params: { maxTokens: 4, logprobs } }),
      );
      const error = await client.next('error', (frame) => frame.id === id);
      expect(error.code).toBe('bad_frame');
      expect(error.message).toContain('logprobs');
    }
  });
});
