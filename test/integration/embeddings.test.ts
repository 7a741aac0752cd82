import { OpenAIEmbeddings } from '@langchain/openai';
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestServer } from '../helpers/startTestServer.js';

const KEY = 'sk-test-embeddings-0123456789abcdef';
const MODEL = 'stories260K';
/** The tiny model's embedding width (its n_embd). */
const WIDTH = 64;

/** The value of one sample line of the Prometheus text format (0 when absent). */
function sample(text: string, name: string): number {
  const line = text.split('\n').find((l) => l.startsWith(`${name} `));
  return line === undefined ? 0 : Number(line.slice(name.length + 1));
}

describe('POST /v1/embeddings, /tokenize and /detokenize on the real tiny model', () => {
  let harness: Awaited<ReturnType<typeof startTestServer>>;
  let client: OpenAI;
  /** `key` null sends no Authorization header. */
  const post = (path: string, body: unknown, key: string | null = KEY) =>
    fetch(`${harness.httpUrl}${path}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...(key === null ? {} : { authorization: `Bearer ${key}` }) },
      body: JSON.stringify(body),
    });
  const scrape = async () => (await fetch(`${harness.httpUrl}/metrics`)).text();
  beforeAll(async () => {
    harness = await startTestServer({ apiKeys: KEY });
    client = new OpenAI({ apiKey: KEY, baseURL: `${harness.httpUrl}/v1`, maxRetries: 0 });
  });
  afterAll(() => harness.stop());

  it('embeds one input with the openai client (its default, base64), as many floats as the model is wide', async () => {
    const answer = await client.embeddings.create({ model: MODEL, input: 'Once upon a time' });
    expect(answer.object).toBe('list');
    expect(answer.model).toBe(MODEL);
    expect(answer.data).toHaveLength(1);
    const [first] = answer.data;
    expect(first).toMatchObject({ object: 'embedding', index: 0 });
    expect(first?.embedding).toHaveLength(WIDTH);
    expect(first?.embedding.every(Number.isFinite)).toBe(true);
    expect(answer.usage.prompt_tokens).toBeGreaterThan(0);
    expect(answer.usage.total_tokens).toBe(answer.usage.prompt_tokens);
  });

  it('answers float and base64 with the same vector, the same input always with the same one', async () => {
    const floats = await client.embeddings.create({ model: MODEL, input: 'The cat sat', encoding_format: 'float' });
    const base64 = await client.embeddings.create({ model: MODEL, input: 'The cat sat', encoding_format: 'base64' });
    const encoded = base64.data[0]?.embedding as unknown as string;
    expect(typeof encoded).toBe('string');
    const bytes = Buffer.from(encoded, 'base64');
    const decoded = Array.from({ length: bytes.length / 4 }, (_, i) => bytes.readFloatLE(i * 4));
    const vector = floats.data[0]?.embedding ?? [];
    expect(vector).toHaveLength(WIDTH);
    expect(decoded).toEqual(vector.map((value) => Math.fround(value)));
    const again = await client.embeddings.create({ model: MODEL, input: 'The cat sat', encoding_format: 'float' });
    expect(again.data[0]?.embedding).toEqual(vector);
  });

  it('embeds many inputs in order, different texts to different vectors, and counts their tokens', async () => {
    const texts = ['Once upon a time', 'The dog ran home', 'Once upon a time'];
    const answer = await client.embeddings.create({ model: MODEL, input: texts, encoding_format: 'float' });
    expect(answer.data.map((d) => d.index)).toEqual([0, 1, 2]);
    const [a, b, c] = answer.data.map((d) => d.embedding);
    expect(a).toEqual(c);
    expect(a).not.toEqual(b);
    const one = await client.embeddings.create({ model: MODEL, input: 'Once upon a time' });
    const other = await client.embeddings.create({ model: MODEL, input: 'The dog ran home' });
    expect(answer.usage.prompt_tokens).toBe(2 * one.usage.prompt_tokens + other.usage.prompt_tokens);
  });

  it('embeds token ids of the model as the text they spell', async () => {
    const tokenized = (await (await post('/tokenize', { content: 'Once upon a time' })).json()) as { tokens: number[] };
    const byText = await client.embeddings.create({
      model: MODEL,
      input: 'Once upon a time',
      encoding_format: 'float',
    });
    const byIds = await client.embeddings.create({ model: MODEL, input: tokenized.tokens, encoding_format: 'float' });
    const listed = await client.embeddings.create({
      model: MODEL,
      input: [tokenized.tokens],
      encoding_format: 'float',
    });
    expect(byIds.data[0]?.embedding).toEqual(byText.data[0]?.embedding);
    expect(listed.data[0]?.embedding).toEqual(byText.data[0]?.embedding);
  });

  it("serves LangChain's OpenAIEmbeddings (embedQuery, embedDocuments)", async () => {
    const embeddings = new OpenAIEmbeddings({
      model: MODEL,
      apiKey: KEY,
      configuration: { baseURL: `${harness.httpUrl}/v1` },
      maxRetries: 0,
    });
    const query = await embeddings.embedQuery('Once upon a time');
    const documents = await embeddings.embedDocuments(['Once upon a time', 'The dog ran home']);
    expect(query).toHaveLength(WIDTH);
    expect(documents).toHaveLength(2);
    expect(documents[0]).toEqual(query);
    expect(documents[1]).not.toEqual(query);
  });

  it('refuses every bad request with a clear error naming the field', async () => {
    const refused = (body: Record<string, unknown>) =>
      client.embeddings.create({ model: MODEL, input: 'x', ...body } as never);
    await expect(refused({ input: '' })).rejects.toMatchObject({ status: 400, code: 'bad_frame', param: 'input' });
    await expect(refused({ input: [] })).rejects.toMatchObject({ status: 400, code: 'bad_frame', param: 'input' });
    await expect(refused({ input: ['a', ''] })).rejects.toMatchObject({ status: 400, param: 'input[1]' });
    await expect(refused({ input: [1, 2, 99_999] })).rejects.toMatchObject({
      status: 400,
      code: 'bad_frame',
      message: expect.stringContaining('token id 99999'),
    });
    await expect(refused({ input: [[1], [-1]] })).rejects.toMatchObject({ status: 400, param: 'input[1]' });
    await expect(refused({ input: Array.from({ length: 2049 }, () => 'a') })).rejects.toMatchObject({
      status: 413,
      code: 'payload_too_large',
      param: 'input',
    });
    await expect(refused({ input: { text: 'x' } })).rejects.toMatchObject({ status: 400, code: 'bad_frame' });
    await expect(refused({ encoding_format: 'int8' })).rejects.toMatchObject({
      status: 400,
      param: 'encoding_format',
    });
    await expect(refused({ dimensions: 32 })).rejects.toMatchObject({
      status: 400,
      code: 'unsupported_parameter',
      param: 'dimensions',
    });
    const sameWidth = await refused({ dimensions: WIDTH, user: 'someone' });
    expect(sameWidth.data[0]?.embedding).toHaveLength(WIDTH);
    await expect(refused({ truncate: true })).rejects.toMatchObject({
      status: 400,
      code: 'unsupported_parameter',
      param: 'truncate',
    });
    await expect(refused({ model: 'text-embedding-3-small' })).rejects.toMatchObject({
      status: 404,
      code: 'not_found',
      param: 'model',
    });
  });

  it('refuses an input longer than the model reads, naming it, rather than cutting it', async () => {
    const long = 'Once upon a time there was a little girl. '.repeat(300);
    await expect(
      client.embeddings.create({ model: MODEL, input: ['Once', long], encoding_format: 'float' }),
    ).rejects.toMatchObject({
      status: 400,
      code: 'context_overflow',
      param: 'input[1]',
      message: expect.stringMatching(/input\[1\] has \d+ tokens; the model embeds at most 2047 /),
    });
  });

  it('refuses a request without a key or with a wrong one, on all three paths', async () => {
    for (const path of ['/v1/embeddings', '/tokenize', '/detokenize']) {
      const body = path === '/detokenize' ? { tokens: [1] } : { input: 'x', content: 'x' };
      expect((await post(path, body, null)).status).toBe(401);
      expect((await post(path, body, 'sk-wrong-key-0123456789abcdef')).status).toBe(401);
    }
    const bad = new OpenAI({
      apiKey: 'sk-wrong-key-0123456789abcdef',
      baseURL: `${harness.httpUrl}/v1`,
      maxRetries: 0,
    });
    await expect(bad.embeddings.create({ model: MODEL, input: 'x' })).rejects.toMatchObject({ status: 401 });
  });

  it('tokenizes and detokenizes as llama-server does, with pieces and the start token on request', async () => {
    const text = 'Once upon a time, a cat.';
    const plain = (await (await post('/tokenize', { content: text })).json()) as { tokens: number[] };
    expect(plain.tokens.length).toBeGreaterThan(3);
    expect(plain.tokens.every(Number.isInteger)).toBe(true);
    const back = (await (await post('/detokenize', { tokens: plain.tokens })).json()) as { content: string };
    expect(back.content.trim()).toBe(text);
    const special = (await (await post('/tokenize', { content: text, add_special: true })).json()) as {
      tokens: number[];
    };
    expect(special.tokens.slice(1)).toEqual(plain.tokens);
    const pieces = (await (await post('/tokenize', { content: text, with_pieces: true })).json()) as {
      tokens: { id: number; piece: string }[];
    };
    expect(pieces.tokens.map((t) => t.id)).toEqual(plain.tokens);
    expect(
      pieces.tokens
        .map((t) => t.piece)
        .join('')
        .trim(),
    ).toBe(text);
  });

  it('refuses bad tokenize and detokenize bodies, and token ids outside the vocabulary', async () => {
    const refusal = async (path: string, body: unknown) => {
      const response = await post(path, body);
      return { status: response.status, ...((await response.json()) as { error: { code: string; message: string } }) };
    };
    expect(await refusal('/detokenize', { tokens: [1, 99_999] })).toMatchObject({
      status: 400,
      error: { code: 'bad_frame', message: expect.stringContaining('tokens[1]: token id 99999') },
    });
    expect(await refusal('/detokenize', { tokens: [-1] })).toMatchObject({ status: 400 });
    expect(await refusal('/detokenize', { tokens: [1.5] })).toMatchObject({ status: 400 });
    expect(await refusal('/detokenize', { tokens: 'abc' })).toMatchObject({ status: 400 });
    expect(await refusal('/tokenize', {})).toMatchObject({ status: 400, error: { code: 'bad_frame' } });
    expect(await refusal('/tokenize', { content: 'x', pieces: true })).toMatchObject({
      status: 400,
      error: { code: 'unsupported_parameter' },
    });
    expect(await refusal('/tokenize', { content: 'x', model: 'gpt-4' })).toMatchObject({ status: 404 });
    expect((await fetch(`${harness.httpUrl}/tokenize`)).status).toBe(405);
    // The server is still up after every refusal.
    expect((await post('/detokenize', { tokens: [1] })).status).toBe(200);
  });

  it('embeds while a chat answer streams, on a context of its own, and both finish', async () => {
    const stream = await client.chat.completions.create({
      model: MODEL,
      messages: [{ role: 'user', content: 'Once upon a time' }],
      max_tokens: 200,
      temperature: 0,
      stream: true,
    });
    let text = '';
    let embedded = 0;
    for await (const chunk of stream) {
      text += chunk.choices[0]?.delta.content ?? '';
      if (text.length > 0 && embedded === 0) {
        const answer = await client.embeddings.create({ model: MODEL, input: ['Once upon a time', 'A dog'] });
        embedded = answer.data.length;
      }
    }
    expect(embedded).toBe(2);
    expect(text.length).toBeGreaterThan(0);
  });

  it('counts embedding requests and their tokens in the metrics', async () => {
    const before = await scrape();
    const answer = await client.embeddings.create({ model: MODEL, input: ['Once upon a time', 'A dog'] });
    await expect(client.embeddings.create({ model: MODEL, input: '' })).rejects.toMatchObject({ status: 400 });
    const after = await scrape();
    const moved = (name: string) => sample(after, name) - sample(before, name);
    expect(moved('llmchat_embedding_requests_total')).toBe(1);
    expect(moved('llmchat_embedding_tokens_total')).toBe(answer.usage.prompt_tokens);
    expect(moved('llmchat_errors_total{code="bad_frame"}')).toBe(1);
  });
});

describe('embedding limits', () => {
  it("charges an embedding's exact input tokens to the key's tokens per minute", async () => {
    const harness = await startTestServer({ apiKeys: KEY, tokensPerMinute: 20 });
    try {
      const client = new OpenAI({ apiKey: KEY, baseURL: `${harness.httpUrl}/v1`, maxRetries: 0 });
      const text = 'Once upon a time there was a girl';
      const first = await client.embeddings.create({ model: MODEL, input: text });
      // Tokens as the model reads the input: the tokenizer's, plus the start token it adds.
      const tokenized = await fetch(`${harness.httpUrl}/tokenize`, {
        method: 'POST',
        headers: { authorization: `Bearer ${KEY}` },
        body: JSON.stringify({ content: text, add_special: true }),
      });
      const { tokens } = (await tokenized.json()) as { tokens: number[] };
      expect(first.usage.prompt_tokens).toBe(tokens.length);
      expect(first.usage.prompt_tokens * 2).toBeGreaterThan(20);
      await expect(client.embeddings.create({ model: MODEL, input: text })).rejects.toMatchObject({
        status: 429,
        code: 'rate_limited',
        message: expect.stringContaining('tokens per minute'),
      });
    } finally {
      await harness.stop();
    }
  });
});
