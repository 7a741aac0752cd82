import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { toGrammarSchema } from '../../server/engine/toGrammarSchema.js';
import { EchoEngine } from '../doubles/EchoEngine.js';
import { postJson } from '../helpers/postJson.js';
import { startTestServer } from '../helpers/startTestServer.js';

describe('toGrammarSchema: what the JSON-schema grammar can enforce', () => {
  const refusal = (schema: unknown) => {
    const result = toGrammarSchema(schema);
    return 'error' in result ? result.error : undefined;
  };

  it('takes objects, arrays, strings with lengths, enums, consts, nullable unions and $defs references', () => {
    const schema = {
      $defs: { Pet: { type: 'object', properties: { kind: { enum: ['cat', 'dog'] } }, required: ['kind'] } },
      type: 'object',
      properties: {
        name: { type: 'string', maxLength: 10, description: 'ignored' },
        age: { type: 'integer', minimum: Number.MIN_SAFE_INTEGER, maximum: Number.MAX_SAFE_INTEGER },
        tags: { type: 'array', items: { type: 'string' }, maxItems: 3 },
        pet: { anyOf: [{ $ref: '#/$defs/Pet' }, { type: 'null' }] },
        when: { type: 'string', format: 'date' },
        kind: { const: 'character' },
        either: { type: ['string', 'object'] },
      },
      additionalProperties: false,
    };
    expect(refusal(schema)).toBeUndefined();
  });

  it.each([
    [{ type: 'string', pattern: '^a' }, '', '"pattern"'],
    [{ type: 'object', properties: { n: { type: 'number', minimum: 0 } } }, '/properties/n', '"minimum"'],
    [{ type: 'string', format: 'email' }, '/format', 'format "email"'],
    [{ allOf: [{ type: 'string' }, { maxLength: 3 }] }, '/allOf', 'single schema'],
    [{ type: 'object', properties: {}, required: ['x'] }, '/required', '"x"'],
    [{ $ref: 'https://example.com/s.json' }, '/$ref', '#/$defs/'],
    [{ $ref: '#/$defs/Nope' }, '/$ref', 'Nope'],
    [{ type: 'object', anyOf: [{ required: ['a'] }] }, '', 'beside "type"'],
    [{ type: 'tuple' }, '/type', 'unknown type'],
    [{ const: { a: 1 } }, '/const', 'only strings'],
    [false, '', 'accepts no value'],
  ])('refuses %j at %j, naming %s', (schema, path, named) => {
    expect(refusal(schema)).toEqual({ path, message: expect.stringContaining(named) });
  });

  it('turns an empty schema into any JSON value, not into null as the grammar would', () => {
    const result = toGrammarSchema({});
    expect('schema' in result && 'oneOf' in result.schema).toBe(true);
  });
});

describe('the OpenAI API refuses what it does not support (engine double)', () => {
  let harness: Awaited<ReturnType<typeof startTestServer>>;
  beforeAll(async () => {
    harness = await startTestServer({}, { engine: new EchoEngine() });
  });
  afterAll(() => harness.stop());

  const post = (path: string, body: unknown) => postJson(harness.httpUrl, path, body);
  const chat = (extra: Record<string, unknown>) =>
    post('/v1/chat/completions', { messages: [{ role: 'user', content: 'hi' }], max_tokens: 2, ...extra });

  it.each([
    [{ n: 2 }, 'n'],
    [{ logit_bias: { 50256: -100 } }, 'logit_bias'],
    [{ presence_penalty: 0.5 }, 'presence_penalty'],
    [{ frequency_penalty: 1 }, 'frequency_penalty'],
    [{ functions: [{ name: 'f' }] }, 'functions'],
    [{ audio: { voice: 'alloy' } }, 'audio'],
    [{ store: true }, 'store'],
    [{ messages: [{ role: 'function', name: 'f', content: '42' }] }, 'messages[0].role'],
    [
      { messages: [{ role: 'assistant', content: null, function_call: { name: 'f', arguments: '{}' } }] },
      'messages[0].function_call',
    ],
    [
      { messages: [{ role: 'user', content: [{ type: 'image_url', image_url: { url: 'x' } }] }] },
      'messages[0].content',
    ],
  ])('answers %j with 400 unsupported_parameter naming %s', async (extra, param) => {
    const { status, body } = await chat(extra);
    expect([status, body.error?.code, body.error?.param]).toEqual([400, 'unsupported_parameter', param]);
    expect(body.error?.message).toContain(param);
    expect(body.error?.type).toBe('invalid_request_error');
  });

  it('accepts the values that ask for nothing, and fields that only describe the caller', async () => {
    const harmless = {
      n: 1,
      logprobs: false,
      presence_penalty: 0,
      frequency_penalty: 0,
      tools: [],
      tool_choice: 'none',
      parallel_tool_calls: true,
      store: false,
      user: 'u1',
      metadata: { a: 'b' },
      response_format: { type: 'text' },
    };
    expect((await chat(harmless)).status).toBe(200);
  });

  it('refuses best_of, echo and suffix on /v1/completions', async () => {
    for (const [field, value] of [
      ['best_of', 2],
      ['echo', true],
      ['suffix', 'end'],
    ] as const) {
      const { status, body } = await post('/v1/completions', { prompt: 'x', max_tokens: 2, [field]: value });
      expect([field, status, body.error?.code]).toEqual([field, 400, 'unsupported_parameter']);
    }
  });

  it('answers 404 in OpenAI’s shape for a /v1/ path it does not serve, whatever the method', async () => {
    const other = await fetch(`${harness.httpUrl}/v1/audio/speech`, { method: 'DELETE' });
    expect(other.status).toBe(404);
    const body = (await other.json()) as { error?: { code?: string; type?: string; message?: string } };
    expect([body.error?.code, body.error?.type]).toEqual(['not_found', 'not_found_error']);
    expect(body.error?.message).toContain('/v1/responses');
  });

  it('refuses an unenforceable schema before queueing it, on both API paths', async () => {
    const schema = { type: 'object', properties: { a: { type: 'string', pattern: 'x' } } };
    const format = { type: 'json_schema', json_schema: { name: 'a', schema } };
    const { status, body } = await chat({ response_format: format });
    expect([status, body.error?.code, body.error?.message]).toEqual([
      400,
      'bad_frame',
      expect.stringContaining('response_format.json_schema.schema at /properties/a: "pattern"'),
    ]);
    expect((await post('/v1/completions', { prompt: 'x', response_format: format })).status).toBe(400);
  });
});
