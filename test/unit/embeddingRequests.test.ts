import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Embedder, EmbeddingInput } from '../../server/engine/Engine.js';
import { tokenBytes } from '../../server/engine/tokenBytes.js';
import { MAX_EMBEDDING_INPUTS, parseEmbeddingRequest } from '../../server/http/openai/embeddingRequest.js';
import { parseDetokenizeRequest, parseTokenizeRequest } from '../../server/http/tokenizeRequest.js';
import { EmbeddingQueue } from '../../server/scheduler/EmbeddingQueue.js';
import { SchedulerRefusal } from '../../server/scheduler/Scheduler.js';
import { EchoEngine } from '../doubles/EchoEngine.js';
import { startTestServer } from '../helpers/startTestServer.js';

const SHAPE = { dimensions: 64, vocabularySize: 512 };

describe('parseEmbeddingRequest: what /v1/embeddings takes', () => {
  const parse = (body: Record<string, unknown>) => parseEmbeddingRequest(body, SHAPE);

  it('takes a string, strings, token ids and arrays of token ids, naming each input for errors', () => {
    const one = parse({ input: 'hi' });
    expect(one).toMatchObject({ inputs: ['hi'], encoding: 'float', model: undefined });
    expect('paramOf' in one && one.paramOf(0)).toBe('input');
    const many = parse({ input: ['a', 'b'], encoding_format: 'base64', model: 'm', user: 'u' });
    expect(many).toMatchObject({ inputs: ['a', 'b'], encoding: 'base64', model: 'm' });
    expect('paramOf' in many && many.paramOf(1)).toBe('input[1]');
    expect(parse({ input: [1, 2, 3] })).toMatchObject({ inputs: [[1, 2, 3]] });
    expect(parse({ input: [[1], [2, 511]] })).toMatchObject({ inputs: [[1], [2, 511]] });
    expect(parse({ input: 'x', dimensions: 64, encoding_format: null })).toMatchObject({ encoding: 'float' });
  });

  it.each([
    [{ input: '' }, 'bad_frame', 'input'],
    [{ input: [] }, 'bad_frame', 'input'],
    [{ input: ['a', ''] }, 'bad_frame', 'input[1]'],
    [{ input: [[1], []] }, 'bad_frame', 'input[1]'],
    [{ input: [1, 512] }, 'bad_frame', 'input'],
    [{ input: [[3], [-1]] }, 'bad_frame', 'input[1]'],
    [{ input: [1.5] }, 'bad_frame', 'input'],
    [{ input: ['a', 1] }, 'bad_frame', 'input'],
    [{ input: 42 }, 'bad_frame', 'input'],
    [{}, 'bad_frame', 'input'],
    [{ input: 'x', encoding_format: 'int8' }, 'bad_frame', 'encoding_format'],
    [{ input: 'x', dimensions: 32 }, 'unsupported_parameter', 'dimensions'],
    [{ input: 'x', dimensions: 0 }, 'bad_frame', 'dimensions'],
    [{ input: 'x', truncate_prompt_tokens: 8 }, 'unsupported_parameter', 'truncate_prompt_tokens'],
    [{ input: 'x', model: 7 }, 'bad_frame', 'model'],
  ])('refuses %j with %s naming %s', (body, code, param) => {
    expect(parse(body)).toMatchObject({ code, param, message: expect.stringContaining(param) });
  });

  it('refuses more inputs than allowed before validating them, and a body that is not an object', () => {
    const tooMany = Array.from({ length: MAX_EMBEDDING_INPUTS + 1 }, () => 'a');
    expect(parse({ input: tooMany })).toMatchObject({ code: 'payload_too_large', param: 'input' });
    expect(parse({ input: tooMany.slice(1) })).toMatchObject({ inputs: tooMany.slice(1) });
    expect(parseEmbeddingRequest(['x'], SHAPE)).toMatchObject({ code: 'bad_frame' });
    expect(parseEmbeddingRequest(null, SHAPE)).toMatchObject({ code: 'bad_frame' });
  });

  it('names the token id outside the vocabulary and where it is', () => {
    expect(parse({ input: [[1], [2, 3, 600]] })).toMatchObject({
      message: "input[1][2]: token id 600 is outside the model's vocabulary (0–511)",
    });
  });
});

describe("parseTokenizeRequest and parseDetokenizeRequest: llama-server's bodies", () => {
  it("takes llama-server's fields with its defaults", () => {
    expect(parseTokenizeRequest({ content: 'hi' })).toEqual({
      content: 'hi',
      addSpecial: false,
      parseSpecial: true,
      withPieces: false,
      model: undefined,
    });
    expect(
      parseTokenizeRequest({ content: '', add_special: true, parse_special: false, with_pieces: true, model: 'm' }),
    ).toEqual({ content: '', addSpecial: true, parseSpecial: false, withPieces: true, model: 'm' });
    expect(parseDetokenizeRequest({ tokens: [0, 511] }, 512)).toEqual({ tokens: [0, 511], model: undefined });
    expect(parseDetokenizeRequest({ tokens: [] }, 512)).toEqual({ tokens: [], model: undefined });
  });

  it.each([
    [{}, 'bad_frame', 'content'],
    [{ content: 3 }, 'bad_frame', 'content'],
    [{ content: 'x', add_special: 'yes' }, 'bad_frame', 'add_special'],
    [{ content: 'x', pieces: true }, 'unsupported_parameter', 'pieces'],
  ])('refuses the tokenize body %j with %s naming %s', (body, code, param) => {
    expect(parseTokenizeRequest(body)).toMatchObject({ code, param });
  });

  it.each([
    [{ tokens: [1, 512] }, 'tokens[1]'],
    [{ tokens: [-1] }, 'tokens[0]'],
    [{ tokens: [0.5] }, 'tokens.0'],
    [{ tokens: '1 2' }, 'tokens'],
    [{}, 'tokens'],
  ])('refuses the detokenize body %j naming %s', (body, param) => {
    expect(parseDetokenizeRequest(body, 512)).toMatchObject({ code: 'bad_frame', param });
  });
});

describe('tokenBytes: the bytes of a piece that is not a whole character', () => {
  it("reads SentencePiece byte tokens and GPT-2's byte-level entries", () => {
    expect(tokenBytes('<0xE2>', 'llama')).toEqual([0xe2]);
    // "Ġ" stands for a space (0x20), "â" (U+00E2) for itself: " â" as bytes, ready to be joined with the next piece.
    expect(tokenBytes('Ġâ', 'gpt2')).toEqual([0x20, 0xe2]);
    expect(tokenBytes('Ċ', 'gpt2')).toEqual([0x0a]);
    expect(tokenBytes('▁Once', 'llama')).toBeUndefined();
    expect(tokenBytes('€', 'gpt2')).toBeUndefined();
  });
});

/** An embedder double whose every request waits until the test lets it go. */
class GatedEmbedder implements Embedder {
  readonly dimensions = 2;
  readonly maxInputTokens = 100;
  readonly vocabularySize = 10;
  readonly started: string[] = [];
  private releases: Array<() => void> = [];
  async countTokens(input: EmbeddingInput) {
    return input.length;
  }
  async embed(inputs: readonly EmbeddingInput[], signal: AbortSignal) {
    signal.throwIfAborted();
    this.started.push(String(inputs[0]));
    await new Promise<void>((resolve) => this.releases.push(resolve));
    return inputs.map(() => [0, 1]);
  }
  release() {
    for (const release of this.releases.splice(0)) release();
  }
}

describe('EmbeddingQueue: one request at a time, bounded', () => {
  const signal = new AbortController().signal;

  it('runs requests in arrival order, one at a time', async () => {
    const embedder = new GatedEmbedder();
    const queue = new EmbeddingQueue(embedder, { maxQueued: 4, maxQueuedPerClient: 4 });
    const first = queue.embed('a', ['1'], signal);
    const second = queue.embed('b', ['2'], signal);
    await new Promise((resolve) => setImmediate(resolve));
    expect(embedder.started).toEqual(['1']);
    expect(queue.queuedCount).toBe(1);
    embedder.release();
    await first;
    await new Promise((resolve) => setImmediate(resolve));
    expect(embedder.started).toEqual(['1', '2']);
    embedder.release();
    await expect(second).resolves.toEqual([[0, 1]]);
    expect(queue.queuedCount).toBe(0);
  });

  it('refuses with queue_full past the server-wide and the per-client bound, with a retry hint', async () => {
    const embedder = new GatedEmbedder();
    const queue = new EmbeddingQueue(embedder, { maxQueued: 2, maxQueuedPerClient: 1 });
    const running = queue.embed('a', ['1'], signal);
    const waiting = queue.embed('a', ['2'], signal);
    const refusal = (clientKey: string) => {
      try {
        void queue.embed(clientKey, ['x'], signal);
      } catch (error) {
        return error;
      }
      return undefined;
    };
    const mine = refusal('a');
    expect(mine).toBeInstanceOf(SchedulerRefusal);
    expect(mine).toMatchObject({ code: 'queue_full', message: expect.stringContaining('You have 1') });
    expect((mine as SchedulerRefusal).retryAfterMs).toBeGreaterThan(0);
    const other = queue.embed('b', ['3'], signal);
    expect(refusal('c')).toMatchObject({ code: 'queue_full', message: expect.stringContaining('queue is full') });
    embedder.release();
    await running;
    for (let turn = 0; turn < 2; turn++) {
      await new Promise((resolve) => setImmediate(resolve));
      embedder.release();
    }
    await Promise.all([waiting, other]);
    expect(embedder.started).toEqual(['1', '2', '3']);
  });

  it('skips a waiting request whose client went away, and goes on with the next', async () => {
    const embedder = new GatedEmbedder();
    const queue = new EmbeddingQueue(embedder, { maxQueued: 4, maxQueuedPerClient: 4 });
    const gone = new AbortController();
    const running = queue.embed('a', ['1'], signal);
    const abandoned = queue.embed('b', ['2'], gone.signal);
    const next = queue.embed('c', ['3'], signal);
    gone.abort();
    embedder.release();
    await running;
    await expect(abandoned).rejects.toThrow();
    await new Promise((resolve) => setImmediate(resolve));
    embedder.release();
    await next;
    expect(embedder.started).toEqual(['1', '3']);
  });
});

describe('an engine without embeddings or a tokenizer (engine double)', () => {
  let harness: Awaited<ReturnType<typeof startTestServer>>;
  beforeAll(async () => {
    harness = await startTestServer({}, { engine: new EchoEngine() });
  });
  afterAll(() => harness.stop());

  it('answers 404 saying so on /v1/embeddings, /tokenize and /detokenize, and stays up', async () => {
    for (const [path, body] of [
      ['/v1/embeddings', { input: 'hi' }],
      ['/tokenize', { content: 'hi' }],
      ['/detokenize', { tokens: [1] }],
    ] as const) {
      const answer = await fetch(`${harness.httpUrl}${path}`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(body),
      });
      const { error } = (await answer.json()) as { error: { code: string; message: string } };
      expect([path, answer.status, error.code]).toEqual([path, 404, 'not_found']);
      expect(error.message).toContain('upstream');
    }
    expect((await fetch(`${harness.httpUrl}/healthz`)).status).toBe(200);
  });
});
