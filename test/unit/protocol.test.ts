import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import {
  CloseCodes,
  decodeClientFrame,
  decodeServerFrame,
  ERROR_CODES,
  errorBody,
  HTTP_STATUS,
  openAiErrorBody,
  RETRYABLE,
  SERVER_FRAME_TYPES,
  ServerFrame,
} from '../../protocol/index.js';
import { buildJsonSchema, JSON_SCHEMA_FILE } from '../../protocol/jsonSchema.js';

describe('protocol v1', () => {
  it('keeps the committed JSON Schema equal to the zod schemas (run `npm run schema` after a change)', () => {
    const committed = JSON.parse(readFileSync(JSON_SCHEMA_FILE, 'utf8'));
    expect(committed).toEqual(JSON.parse(JSON.stringify(buildJsonSchema())));
  });

  it('decodes every client frame type', () => {
    const frames = [
      { type: 'session.open', id: 'a', system: 'Be brief.' },
      {
        type: 'chat.send',
        id: 'b',
        sessionId: 's_1',
        content: 'hi',
        params: { maxTokens: 5, reasoning: 'low', stop: ['\n'] },
      },
      { type: 'generation.cancel', id: 'c', genId: 'g_1' },
      { type: 'generation.resume', id: 'd', genId: 'g_1', afterSeq: 3 },
      { type: 'ping', id: 'e' },
    ];
    for (const frame of frames) expect(decodeClientFrame(JSON.stringify(frame))).toEqual({ ok: true, frame });
  });

  it.each([
    ['not json', 'bad_json'],
    ['[1,2]', 'bad_frame'],
    ['"ping"', 'bad_frame'],
    ['{"id":"x"}', 'bad_frame'],
    ['{"type":"warp","id":"x"}', 'unknown_type'],
    ['{"type":"ping","id":""}', 'bad_frame'],
    [`{"type":"ping","id":"${'x'.repeat(65)}"}`, 'bad_frame'],
    ['{"type":"chat.send","id":"x","sessionId":"s","content":""}', 'bad_frame'],
    ['{"type":"chat.send","id":"x","sessionId":"s","content":"a","params":{"topP":0}}', 'bad_frame'],
    ['{"type":"chat.send","id":"x","sessionId":"s","content":"a","params":{"reasoning":"max"}}', 'bad_frame'],
    ['{"type":"generation.resume","id":"x","genId":"g","afterSeq":-1}', 'bad_frame'],
  ])('refuses %s with %s', (text, code) => {
    const result = decodeClientFrame(text);
    expect(result.ok).toBe(false);
    if (!result.ok) expect(result.code).toBe(code);
  });

  it('echoes the id of a frame it refuses when the id is usable', () => {
    expect(decodeClientFrame('{"type":"chat.send","id":"mine"}')).toMatchObject({ ok: false, id: 'mine' });
  });

  it('decodes server frames of every v1 type, and nothing else', () => {
    expect([...SERVER_FRAME_TYPES].sort()).toEqual(ServerFrame.options.map((option) => option.shape.type.value).sort());
    expect(decodeServerFrame('{"type":"pong","id":"p"}')).toEqual({ type: 'pong', id: 'p' });
    for (const text of ['{"type":"warp"}', '[1]', 'null', 'nope', '{"id":"x"}'])
      expect(decodeServerFrame(text)).toBeUndefined();
  });

  it('states for every error code whether a retry may succeed', () => {
    expect(Object.keys(RETRYABLE).sort()).toEqual([...ERROR_CODES].sort());
  });

  it('maps every error code to one HTTP status, and derives the plain and OpenAI bodies from a refusal', () => {
    expect(Object.keys(HTTP_STATUS).sort()).toEqual([...ERROR_CODES].sort());
    for (const status of Object.values(HTTP_STATUS)) expect(status >= 400 && status <= 599).toBe(true);
    const refusal = { code: 'rate_limited', message: 'Slow down', retryAfterMs: 1500 } as const;
    expect(errorBody(refusal)).toEqual({
      error: { code: 'rate_limited', message: 'Slow down', retryable: true, retryAfterMs: 1500 },
    });
    expect(openAiErrorBody(refusal)).toEqual({
      error: { message: 'Slow down', type: 'rate_limit_error', param: null, code: 'rate_limited', retryAfterMs: 1500 },
    });
    expect(openAiErrorBody({ code: 'context_overflow', message: 'Too long' }).error.type).toBe('invalid_request_error');
    expect(openAiErrorBody({ code: 'model_error', message: 'Broke' }).error.type).toBe('server_error');
  });

  it('keeps application close codes in the 4000 range and standard ones below 1012', () => {
    for (const { code } of Object.values(CloseCodes)) {
      expect(code >= 4000 || (code >= 1000 && code <= 1011)).toBe(true);
    }
  });
});
