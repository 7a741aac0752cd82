import fc from 'fast-check';
import { z } from 'zod';
import { ERROR_CODES, type ErrorCode } from '../../protocol/index.js';

/**
 * fast-check arbitraries for requests to the HTTP API, each with the statuses the README documents
 * for it ("OpenAI-compatible HTTP API", "HTTP endpoints"), and the check of an answer.
 */

export type HttpCase = {
  label: string;
  method: string;
  path: string;
  body?: string;
  /** Statuses it may get; non-200 answers carry an error body. */
  statuses: readonly number[];
  /** The API paths answer errors in OpenAI's shape; other paths `{error: {code, message}}`. */
  openAiErrors: boolean;
};

/** Error codes each status may carry (README: 400, 404, 405, 408, 413, 429, 503). */
const CODES_BY_STATUS: Readonly<Record<number, readonly ErrorCode[]>> = {
  400: ['bad_json', 'bad_frame', 'unsupported_parameter', 'context_overflow'],
  404: ['not_found'],
  405: ERROR_CODES,
  408: ['request_timeout'],
  413: ['payload_too_large'],
  429: ['rate_limited', 'queue_full'],
  503: ['not_ready', 'shutting_down'],
};

const OpenAiError = z.object({
  error: z.object({ message: z.string(), type: z.string(), code: z.enum(ERROR_CODES) }),
});
const PlainError = z.object({ error: z.object({ message: z.string(), code: z.enum(ERROR_CODES) }) });
const Completion = z.object({
  object: z.enum(['chat.completion', 'text_completion']),
  choices: z.array(z.object({ finish_reason: z.enum(['stop', 'length']) })).length(1),
  usage: z.object({ prompt_tokens: z.number(), completion_tokens: z.number(), total_tokens: z.number() }),
});
const ModelList = z.object({ object: z.literal('list'), data: z.array(z.object({ id: z.string() })).min(1) });

const API_PATHS = ['/v1/chat/completions', '/v1/completions'] as const;
const OTHER_METHODS = ['PUT', 'DELETE', 'PATCH'] as const;

const text = (maxLength = 40) =>
  fc.oneof(
    fc.string({ maxLength }),
    fc.string({ unit: 'grapheme', maxLength }),
    fc.string({ unit: 'binary', maxLength }),
  );

/** Sampling fields within range, max_tokens small: a valid request is cheap to answer. */
const sampling = fc.record(
  {
    max_tokens: fc.integer({ min: 1, max: 8 }),
    temperature: fc.double({ min: 0, max: 2, noNaN: true }),
    top_p: fc.double({ min: 0.001, max: 1, noNaN: true }),
    seed: fc.integer({ min: 0, max: 4_294_967_295 }),
    stop: fc.oneof(
      text(8).filter((s) => s.length > 0),
      fc.array(
        text(8).filter((s) => s.length > 0),
        { maxLength: 8 },
      ),
    ),
    stream: fc.boolean(),
    stream_options: fc.record({ include_usage: fc.boolean() }),
    model: fc.constant('stories260K'),
    n: fc.constant(1),
    user: text(), // not an OpenAI field we use: ignored
  },
  { requiredKeys: ['max_tokens'] },
);

const message = fc.record({
  role: fc.constantFrom('system', 'developer', 'user', 'assistant'),
  content: fc.oneof(
    text(80),
    fc.constant(null),
    fc.array(fc.record({ type: fc.constant('text'), text: text(20) }), { maxLength: 3 }),
  ),
});

const validChat = fc
  .record({ sampling, messages: fc.array(message, { minLength: 1, maxLength: 4 }) })
  .map(({ sampling, messages }) => ({ ...sampling, messages }));
const validText = fc
  .record({ sampling, prompt: text(80).filter((p) => p.length > 0) })
  .map(({ sampling, prompt }) => ({ ...sampling, prompt }));

/** One field changed so that the request is certainly refused, with the status that documents it. */
const brokenField = fc.constantFrom<[Record<string, unknown>, number]>(
  [{ max_tokens: 0 }, 400],
  [{ max_tokens: 65 }, 400],
  [{ max_tokens: 1_000_000 }, 400],
  [{ max_tokens: 2.5 }, 400],
  [{ max_completion_tokens: -3 }, 400],
  [{ temperature: 3 }, 400],
  [{ temperature: 'warm' }, 400],
  [{ top_p: 0 }, 400],
  [{ seed: -1 }, 400],
  [{ stop: [''] }, 400],
  [{ stop: Array.from({ length: 9 }, (_, i) => `s${i}`) }, 400],
  [{ stream: 'yes' }, 400],
  [{ stream_options: 'usage' }, 400],
  [{ n: 2 }, 400],
  [{ model: 'gpt-4o' }, 404],
  [{ model: 42 }, 400],
);

const brokenChat = fc.oneof(
  fc
    .record({ valid: validChat, broken: brokenField })
    .map(({ valid, broken }) => ({ body: { ...valid, ...broken[0] }, status: broken[1] })),
  fc
    .constantFrom<[unknown, number]>(
      [[], 400],
      ['Once upon a time', 400],
      [[{ role: 'tool', content: 'x' }], 400],
      [[{ role: 'user', content: 42 }], 400],
      [[{ content: 'x' }], 400],
      [[{ role: 'user', content: [{ type: 'image_url', image_url: 'x' }] }], 400],
      [Array.from({ length: 1001 }, () => ({ role: 'user', content: '' })), 413],
      [[{ role: 'user', content: Array.from({ length: 257 }, () => ({ type: 'text', text: '' })) }], 413],
      [[{ role: 'user', content: 'x'.repeat(32_001) }], 413],
    )
    .map(([messages, status]) => ({ body: { messages, max_tokens: 4 }, status })),
);

const brokenText = fc.oneof(
  fc
    .record({ valid: validText, broken: brokenField })
    .map(({ valid, broken }) => ({ body: { ...valid, ...broken[0] }, status: broken[1] })),
  fc
    .constantFrom<[unknown, number]>([42, 400], [null, 400], ['', 400], ['x'.repeat(32_001), 413])
    .map(([prompt, status]) => ({ body: { prompt, max_tokens: 4 }, status })),
);

const notJson = text(60).filter((candidate) => {
  try {
    JSON.parse(candidate);
    return false;
  } catch {
    return true;
  }
});

/** POST bodies for one API path. */
function apiPost(path: (typeof API_PATHS)[number]): fc.Arbitrary<HttpCase> {
  const post = (label: string, body: string, statuses: readonly number[]): HttpCase => ({
    label: `POST ${path}: ${label}`,
    method: 'POST',
    path,
    body,
    statuses,
    openAiErrors: true,
  });
  const valid = path === '/v1/chat/completions' ? validChat : validText;
  const broken = path === '/v1/chat/completions' ? brokenChat : brokenText;
  return fc.oneof(
    // A valid request may still wait in a full queue: 429 queue_full is documented.
    { weight: 4, arbitrary: valid.map((body) => post('valid', JSON.stringify(body), [200, 429])) },
    {
      weight: 4,
      arbitrary: broken.map(({ body, status }) => post(`refused (${status})`, JSON.stringify(body), [status])),
    },
    {
      weight: 3,
      arbitrary: fc
        .jsonValue({ maxDepth: 4 })
        .map((value) => post('any JSON', JSON.stringify(value), [200, 400, 404, 413, 429])),
    },
    { weight: 2, arbitrary: notJson.map((body) => post('not JSON', body, [400])) },
    {
      weight: 1,
      arbitrary: fc
        .integer({ min: 256 * 1024 + 1, max: 320 * 1024 })
        .map((size) => post(`${size} bytes`, `{"prompt":"${'x'.repeat(size)}"}`, [413])),
    },
  );
}

/**
 * Paths that name no file. Each segment starts with a letter, so that none is `.` or `..` (which
 * fetch would resolve, into `/` and its index.html).
 */
const fuzzPath = fc
  .array(
    fc.oneof(
      fc.stringMatching(/^[A-Za-z0-9_~-]{1,12}$/),
      fc.string({ unit: 'grapheme', maxLength: 6 }).map(encodeURIComponent),
    ),
    {
      minLength: 1,
      maxLength: 3,
    },
  )
  .map((segments) => `/fuzz-${segments.map((segment) => `x${segment}`).join('/')}`);

/** One HTTP request, with its documented answers. */
export const httpCase: fc.Arbitrary<HttpCase> = fc.oneof(
  { weight: 6, arbitrary: apiPost('/v1/chat/completions') },
  { weight: 4, arbitrary: apiPost('/v1/completions') },
  {
    weight: 1,
    arbitrary: fc
      .record({ path: fc.constantFrom(...API_PATHS), method: fc.constantFrom('GET', ...OTHER_METHODS) })
      .map(({ path, method }) => ({ label: `${method} ${path}`, method, path, statuses: [405], openAiErrors: true })),
  },
  {
    weight: 1,
    arbitrary: fc.constantFrom('GET', 'POST', ...OTHER_METHODS).map((method) => ({
      label: `${method} /v1/models`,
      method,
      path: '/v1/models',
      statuses: method === 'GET' ? [200] : [405],
      openAiErrors: true,
    })),
  },
  {
    weight: 1,
    arbitrary: fc
      .record({ path: fuzzPath, method: fc.constantFrom('GET', 'POST', ...OTHER_METHODS) })
      .map(({ path, method }) => ({
        label: `${method} unknown path`,
        method,
        path,
        statuses: method === 'GET' ? [404] : [405],
        openAiErrors: false,
      })),
  },
);

/** Sends the request; returns what is wrong with the answer, or undefined when it is documented. */
export async function checkHttp(baseUrl: string, request: HttpCase, timeoutMs: number): Promise<string | undefined> {
  const where = `${request.label} (${request.method} ${request.path} ${request.body?.slice(0, 200) ?? ''})`;
  let response: Response;
  let body: string;
  try {
    response = await fetch(baseUrl + request.path, {
      method: request.method,
      headers: { 'content-type': 'application/json' },
      ...(request.body === undefined ? {} : { body: request.body }),
      signal: AbortSignal.timeout(timeoutMs),
    });
    body = await response.text();
  } catch (error) {
    return `${where}: no answer (${error instanceof Error ? `${error.name}: ${error.message}` : String(error)})`;
  }
  const { status } = response;
  if (!request.statuses.includes(status))
    return `${where}: status ${status}, documented ${request.statuses.join('|')}: ${body.slice(0, 300)}`;
  const wrong = status === 200 ? checkSuccess(request, response, body) : checkError(request, response, body);
  return wrong === undefined ? undefined : `${where}: ${wrong}: ${body.slice(0, 300)}`;
}

function checkError(request: HttpCase, response: Response, body: string): string | undefined {
  const parsed = (request.openAiErrors ? OpenAiError : PlainError).safeParse(parseJson(body));
  if (!parsed.success) return `a ${response.status} without the documented error body`;
  const allowed = CODES_BY_STATUS[response.status] ?? [];
  if (!allowed.includes(parsed.data.error.code)) return `code ${parsed.data.error.code} with status ${response.status}`;
  if (response.status === 429 && response.headers.get('retry-after') === null) return 'a 429 without Retry-After';
  return undefined;
}

function checkSuccess(request: HttpCase, response: Response, body: string): string | undefined {
  if (request.path === '/v1/models')
    return ModelList.safeParse(parseJson(body)).success ? undefined : 'not a model list';
  if (response.headers.get('content-type')?.startsWith('text/event-stream')) return checkStream(body);
  return Completion.safeParse(parseJson(body)).success ? undefined : 'not a completion';
}

/** Server-sent events: JSON chunks, then `data: [DONE]`. */
function checkStream(body: string): string | undefined {
  if (!body.endsWith('data: [DONE]\n\n')) return 'a stream that does not end with data: [DONE]';
  const events = body.split('\n\n').filter((event) => event !== '' && event !== 'data: [DONE]');
  const bad = events.find((event) => !event.startsWith('data: ') || parseJson(event.slice(6)) === undefined);
  return bad === undefined ? undefined : `a stream event that is not JSON: ${bad.slice(0, 100)}`;
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}
