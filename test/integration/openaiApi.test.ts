import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestServer } from '../helpers/startTestServer.js';

const KEY = 'sk-test-openai-0123456789abcdef';

describe('the OpenAI-compatible HTTP API, driven by the official openai client', () => {
  let harness: Awaited<ReturnType<typeof startTestServer>>;
  let client: OpenAI;
  beforeAll(async () => {
    harness = await startTestServer({ apiKeys: KEY, maxConcurrent: 1 });
    client = new OpenAI({ apiKey: KEY, baseURL: `${harness.httpUrl}/v1`, maxRetries: 0 });
  });
  afterAll(() => harness.stop());

  it('lists the model', async () => {
    const models = await client.models.list();
    expect(models.data.map((m) => m.id)).toEqual(['stories260K']);
  });

  it('describes one model by id, and answers 404 in OpenAI shape for one it does not serve', async () => {
    const model = await client.models.retrieve('stories260K');
    expect(model).toMatchObject({ id: 'stories260K', object: 'model' });
    await expect(client.models.retrieve('gpt-5')).rejects.toMatchObject({ status: 404, code: 'not_found' });
  });

  it('takes a prompt as an array of one string (as LangChain sends it), and refuses several', async () => {
    const asString = await client.completions.create({
      model: 'stories260K',
      prompt: 'Once',
      max_tokens: 8,
      temperature: 0,
    });
    const asArray = await client.completions.create({
      model: 'stories260K',
      prompt: ['Once'],
      max_tokens: 8,
      temperature: 0,
    });
    expect(asArray.choices[0]?.text).toBe(asString.choices[0]?.text);
    await expect(
      client.completions.create({ model: 'stories260K', prompt: ['Once', 'Twice'], max_tokens: 8 }),
    ).rejects.toMatchObject({ status: 400, message: expect.stringContaining('one prompt per request') });
  });

  it('takes every OpenAI reasoning effort, and refuses another', async () => {
    for (const effort of ['none', 'minimal', 'low', 'medium', 'high'] as const) {
      const completion = await client.chat.completions.create({
        model: 'stories260K',
        messages: [{ role: 'user', content: 'Hi' }],
        max_tokens: 4,
        reasoning_effort: effort,
      });
      expect(completion.choices[0]?.finish_reason).toBeDefined();
    }
    await expect(
      client.chat.completions.create({
        model: 'stories260K',
        messages: [{ role: 'user', content: 'Hi' }],
        max_tokens: 4,
        reasoning_effort: 'extreme' as 'high',
      }),
    ).rejects.toMatchObject({ status: 400, message: expect.stringContaining('reasoning_effort') });
  });

  it('answers a chat completion with usage', async () => {
    const completion = await client.chat.completions.create({
      model: 'stories260K',
      messages: [
        { role: 'system', content: 'You tell stories.' },
        { role: 'user', content: 'Once upon a time' },
      ],
      max_tokens: 20,
      temperature: 0,
      seed: 1,
    });
    expect(completion.object).toBe('chat.completion');
    expect(completion.choices[0]?.message.role).toBe('assistant');
    expect(completion.choices[0]?.message.content?.length).toBeGreaterThan(0);
    expect(['stop', 'length']).toContain(completion.choices[0]?.finish_reason);
    expect(completion.usage?.completion_tokens).toBeGreaterThan(0);
    expect(completion.usage?.total_tokens).toBe(
      (completion.usage?.prompt_tokens ?? 0) + (completion.usage?.completion_tokens ?? 0),
    );
  });

  it('streams a chat completion as server-sent events with the same text as without streaming', async () => {
    const params = {
      model: 'stories260K',
      messages: [{ role: 'user' as const, content: 'The little dog' }],
      max_tokens: 25,
      temperature: 0,
      seed: 4,
    };
    const whole = await client.chat.completions.create(params);
    const stream = await client.chat.completions.create({
      ...params,
      stream: true,
      stream_options: { include_usage: true },
    });
    let text = '';
    let finish: string | null = null;
    let usage: OpenAI.CompletionUsage | undefined;
    for await (const chunk of stream) {
      text += chunk.choices[0]?.delta.content ?? '';
      finish = chunk.choices[0]?.finish_reason ?? finish;
      usage = chunk.usage ?? usage;
    }
    expect(text).toBe(whole.choices[0]?.message.content);
    expect(finish).toBe(whole.choices[0]?.finish_reason);
    expect(usage?.completion_tokens).toBe(whole.usage?.completion_tokens);
  });

  it('continues plain text on /v1/completions, streaming or not', async () => {
    const completion = await client.completions.create({
      model: 'stories260K',
      prompt: 'Once upon a time',
      max_tokens: 15,
      temperature: 0,
    });
    expect(completion.object).toBe('text_completion');
    const text = completion.choices[0]?.text ?? '';
    expect(text.length).toBeGreaterThan(0);
    const stream = await client.completions.create({
      model: 'stories260K',
      prompt: 'Once upon a time',
      max_tokens: 15,
      temperature: 0,
      stream: true,
    });
    let streamed = '';
    for await (const chunk of stream) streamed += chunk.choices[0]?.text ?? '';
    expect(streamed).toBe(text);
  });

  it('answers errors in OpenAI shape with fitting statuses', async () => {
    const wrongKey = new OpenAI({
      apiKey: 'sk-wrong-wrong-wrong-wrong',
      baseURL: `${harness.httpUrl}/v1`,
      maxRetries: 0,
    });
    await expect(wrongKey.models.list()).rejects.toMatchObject({ status: 401 });
    await expect(
      wrongKey.chat.completions.create({ model: 'stories260K', messages: [{ role: 'user', content: 'hi' }] }),
    ).rejects.toMatchObject({ status: 401, code: 'unauthorized' });
    await expect(
      client.chat.completions.create({ model: 'gpt-9', messages: [{ role: 'user', content: 'hi' }] }),
    ).rejects.toMatchObject({ status: 404, code: 'not_found' });
    await expect(client.chat.completions.create({ model: 'stories260K', messages: [] })).rejects.toMatchObject({
      status: 400,
      code: 'bad_frame',
    });
    await expect(
      client.chat.completions.create({
        model: 'stories260K',
        messages: [{ role: 'user', content: 'hi' }],
        max_tokens: 10_000_000,
      }),
    ).rejects.toMatchObject({ status: 400 });
    const big = await fetch(`${harness.httpUrl}/v1/chat/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${KEY}`, 'content-type': 'application/json' },
      body: JSON.stringify({ messages: [{ role: 'user', content: 'x'.repeat(2_000_000) }] }),
    });
    expect(big.status).toBe(413);
    expect(await big.json()).toMatchObject({ error: { type: 'invalid_request_error', code: 'payload_too_large' } });
    const notJson = await fetch(`${harness.httpUrl}/v1/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${KEY}` },
      body: '{oops',
    });
    expect(notJson.status).toBe(400);
    expect(await notJson.json()).toMatchObject({ error: { code: 'bad_json' } });
  });

  it('cancels the generation and frees the sequence when the client goes away', async () => {
    const controller = new AbortController();
    const stream = await client.chat.completions.create(
      {
        model: 'stories260K',
        messages: [{ role: 'user', content: 'Once upon a time' }],
        max_tokens: 2000,
        temperature: 0,
        stream: true,
      },
      { signal: controller.signal },
    );
    let chunks = 0;
    try {
      for await (const _chunk of stream) if (++chunks === 10) controller.abort();
    } catch {
      // The client reports its own abort; what matters is what the server did.
    }
    expect(chunks).toBeGreaterThanOrEqual(10);
    // One sequence: this only starts once the abandoned one was cancelled.
    const started = performance.now();
    const next = await client.chat.completions.create({
      model: 'stories260K',
      messages: [{ role: 'user', content: 'Hi' }],
      max_tokens: 5,
    });
    expect(next.choices[0]?.finish_reason).toBeDefined();
    expect(performance.now() - started).toBeLessThan(2000);
    const metrics = await (await fetch(`${harness.httpUrl}/metrics`)).text();
    expect(metrics).toMatch(/llmchat_cancellations_total 1/);
  });
});
