import fc from 'fast-check';
import { CLIENT_FRAME_TYPES, type ErrorCode, type ServerFrame } from '../../protocol/index.js';

/**
 * fast-check arbitraries for what an attacker sends over protocol v1: valid frames of every client
 * type, mutated frames, text that is not a JSON object, and binary frames. Each case carries the
 * answer the README documents for it, so the suite checks every frame against its own oracle.
 */

/** What a frame must get back. */
export type Answer = {
  /**
   * True when the frame carries a usable request id: every answer echoes it. False: exactly one
   * error frame without an id answers it.
   */
  withId: boolean;
  /** Frame types that answer it besides an error (the first one settles it). */
  replies: readonly ServerFrame['type'][];
  /** Error codes that may answer it. */
  codes: readonly ErrorCode[];
  /** generation.resume: a success is the replay, so the generation's `generation.done` settles it. */
  settledByDone?: true;
};

/**
 * A reference to state that exists only at send time: one of the connection's own sessions or
 * generations (picked by index), or a made-up id.
 */
export type Ref = { known: number } | { madeUp: string };

export type JsonCase = {
  shape: 'json';
  label: string;
  /** The frame without its id and referenced fields; `deep` marks where a deep nesting goes. */
  frame: Record<string, unknown>;
  /** Fields filled at send time. `resumeToken: 'matching'` is the token of the session picked. */
  refs: { sessionId?: Ref; genId?: Ref; resumeToken?: 'matching' };
  /** How the id is filled: a unique usable one (with this prefix), none, or a bad value. */
  id: { prefix: string } | { missing: true } | { bad: unknown };
  /** Depth of the nested arrays that replace the DEEP marker, if any. */
  deep?: number;
  answer: Answer;
};
export type TextCase = { shape: 'text'; label: string; text: string; answer: Answer };
export type BinaryCase = { shape: 'binary'; label: string; bytes: Uint8Array; answer: Answer };
export type FrameCase = JsonCase | TextCase | BinaryCase;

/** Placeholder for a deeply nested value, spliced in as raw JSON (JSON.stringify would overflow the stack). */
export const DEEP = '\u0000deep';

/** The documented answers of each valid client frame (README, "Protocol v1" and "Error codes"). */
const ANSWERS = {
  'session.open': {
    replies: ['session.opened'],
    codes: ['forbidden', 'not_found', 'payload_too_large', 'rate_limited'],
  },
  'session.close': { replies: ['session.closed'], codes: ['not_found'] },
  'chat.send': {
    replies: ['generation.queued'],
    codes: [
      'not_found',
      'session_busy',
      'payload_too_large',
      'session_full',
      'rate_limited',
      'queue_full',
      'bad_frame',
    ],
  },
  'generation.cancel': { replies: ['cancel.ack'], codes: [] },
  'generation.resume': { replies: [], codes: ['not_found', 'rate_limited'], settledByDone: true },
  ping: { replies: ['pong'], codes: [] },
} as const satisfies Record<string, Omit<Answer, 'withId'>>;

type FrameType = keyof typeof ANSWERS;

const idLess = (codes: readonly ErrorCode[]): Answer => ({ withId: false, replies: [], codes });
const errorWithId = (code: ErrorCode): Answer => ({ withId: true, replies: [], codes: [code] });

// ---------------------------------------------------------------------------------------------
// Strings

/** Any text: ASCII, graphemes, or raw code units (lone surrogates included). */
const anyText = (maxLength = 24) =>
  fc.oneof(
    fc.string({ maxLength }),
    fc.string({ unit: 'grapheme', maxLength }),
    fc.string({ unit: 'binary', maxLength }),
  );

/** Clipped to `max` UTF-16 code units: the schema counts those. */
const clipped = (text: fc.Arbitrary<string>, min: number, max: number) =>
  text.map((value) => value.slice(0, max)).filter((value) => value.length >= min);

/**
 * Long text: ASCII runs past `--max-message-chars` (32,000; one byte a character, so the frame
 * stays under 64 KiB), refused with payload_too_large; or prompt-sized runs of any text (200 to
 * 6,000 characters, up to about the context's 2,048 tokens), accepted, whose prefill must not hold
 * up anyone else's answer.
 */
const longText = fc.oneof(
  fc
    .record({
      unit: fc.constantFrom('x', 'Once upon a time ', '<a&b> ', '0123456789'),
      chars: fc.integer({ min: 32_001, max: 44_000 }),
    })
    .map(({ unit, chars }) => unit.repeat(Math.ceil(chars / unit.length)).slice(0, chars)),
  fc
    .record({ unit: anyText(4), chars: fc.integer({ min: 200, max: 6_000 }) })
    .filter(({ unit }) => unit.length > 0)
    .map(({ unit, chars }) => unit.repeat(Math.ceil(chars / unit.length)).slice(0, chars)),
);

const content = fc.oneof({ weight: 20, arbitrary: clipped(anyText(40), 1, 64) }, { weight: 1, arbitrary: longText });
const madeUpId = clipped(fc.oneof(fc.constantFrom('s_x', 'g_x', 's_', 'g_'), anyText(64)), 1, 64);
const sessionRef: fc.Arbitrary<Ref> = fc.oneof(
  { weight: 3, arbitrary: fc.nat().map((known) => ({ known })) },
  { weight: 1, arbitrary: madeUpId.map((madeUp) => ({ madeUp })) },
);
const genRef = sessionRef;

// ---------------------------------------------------------------------------------------------
// Valid frames

/** Sampling parameters within the schema: maxTokens mostly small, sometimes above --max-tokens. */
const params = fc.record(
  {
    maxTokens: fc.oneof(
      { weight: 6, arbitrary: fc.integer({ min: 1, max: 8 }) },
      fc.integer({ min: 65, max: 1_000_000 }),
    ),
    temperature: fc.double({ min: 0, max: 2, noNaN: true }),
    topP: fc.double({ min: 0.001, max: 1, noNaN: true }),
    topK: fc.integer({ min: 0, max: 1000 }),
    minP: fc.double({ min: 0, max: 1, noNaN: true }),
    seed: fc.integer({ min: 0, max: 4_294_967_295 }),
    stop: fc.array(clipped(anyText(8), 1, 64), { maxLength: 8 }),
    reasoning: fc.constantFrom('low', 'medium', 'high'),
  },
  { requiredKeys: ['maxTokens'] },
);

type ValidFrame = { type: FrameType; frame: Record<string, unknown>; refs: JsonCase['refs'] };

/**
 * One valid frame of each client type. chat.send is about 1 frame in 90 of the whole attack: enough
 * generations for cancels and resumes to find real ones, few enough that the attack is frame
 * handling rather than a load test of the engine.
 */
const validFrame: fc.Arbitrary<ValidFrame> = fc.oneof(
  {
    weight: 6,
    arbitrary: fc.option(fc.oneof({ weight: 8, arbitrary: anyText(40) }, longText), { nil: undefined }).map(
      (system): ValidFrame => ({
        type: 'session.open',
        frame: { type: 'session.open', ...(system === undefined ? {} : { system }) },
        refs: {},
      }),
    ),
  },
  {
    weight: 2,
    arbitrary: fc
      .record({ sessionId: sessionRef, token: fc.option(clipped(anyText(40), 1, 128), { nil: undefined }) })
      .map(
        ({ sessionId, token }): ValidFrame => ({
          type: 'session.open',
          frame: { type: 'session.open', ...(token === undefined ? {} : { resumeToken: token }) },
          refs: token === undefined ? { sessionId, resumeToken: 'matching' } : { sessionId },
        }),
      ),
  },
  {
    weight: 4,
    arbitrary: fc.record({ sessionId: sessionRef, forget: fc.option(fc.boolean(), { nil: undefined }) }).map(
      ({ sessionId, forget }): ValidFrame => ({
        type: 'session.close',
        frame: { type: 'session.close', ...(forget === undefined ? {} : { forget }) },
        refs: { sessionId },
      }),
    ),
  },
  {
    weight: 1,
    arbitrary: fc.record({ sessionId: sessionRef, content, params: fc.option(params, { nil: undefined }) }).map(
      ({ sessionId, content, params }): ValidFrame => ({
        type: 'chat.send',
        frame: { type: 'chat.send', content, ...(params === undefined ? {} : { params }) },
        refs: { sessionId },
      }),
    ),
  },
  {
    weight: 6,
    arbitrary: genRef.map(
      (genId): ValidFrame => ({ type: 'generation.cancel', frame: { type: 'generation.cancel' }, refs: { genId } }),
    ),
  },
  {
    weight: 6,
    arbitrary: fc.record({ genId: genRef, afterSeq: fc.oneof(fc.nat(70), fc.maxSafeNat()) }).map(
      ({ genId, afterSeq }): ValidFrame => ({
        type: 'generation.resume',
        frame: { type: 'generation.resume', afterSeq },
        refs: { genId },
      }),
    ),
  },
  { weight: 12, arbitrary: fc.constant<ValidFrame>({ type: 'ping', frame: { type: 'ping' }, refs: {} }) },
);

const KNOWN_FIELDS = new Set([
  'type',
  'id',
  'sessionId',
  'resumeToken',
  'system',
  'forget',
  'content',
  'params',
  'genId',
  'afterSeq',
]);
const extraKeys = fc.dictionary(
  clipped(anyText(12), 1, 40).filter((key) => !KNOWN_FIELDS.has(key) && key !== '__proto__'),
  fc.jsonValue({ maxDepth: 2 }),
  { minKeys: 1, maxKeys: 3 },
);

/** A valid frame, sometimes with unknown top-level keys (ignored today; refusing them with bad_frame is documented too). */
const validCase: fc.Arbitrary<JsonCase> = fc
  .record({
    valid: validFrame,
    prefix: anyText(40),
    extra: fc.oneof({ weight: 7, arbitrary: fc.constant(undefined) }, { weight: 1, arbitrary: extraKeys }),
  })
  .map(({ valid, prefix, extra }) => {
    const documented = ANSWERS[valid.type];
    const codes: readonly ErrorCode[] = extra === undefined ? documented.codes : [...documented.codes, 'bad_frame'];
    return {
      shape: 'json',
      label: `${valid.type}${extra === undefined ? '' : ' + unknown keys'}`,
      frame: { ...extra, ...valid.frame },
      refs: valid.refs,
      id: { prefix },
      answer: { ...documented, withId: true, codes },
    };
  });

// ---------------------------------------------------------------------------------------------
// Mutated frames: each mutation is certain to be refused, so the answer is one exact error code.

/** Values of the wrong type or range for a string field of 1–64 characters. */
const notAServerId = fc.oneof(
  fc.constantFrom<unknown>(null, true, 0, -1, 1.5, '', [], {}, ['s_x'], { id: 's_x' }),
  fc.integer({ min: 65, max: 300 }).map((length) => 's'.repeat(length)),
  fc.jsonValue({ maxDepth: 2 }).filter((value) => typeof value !== 'string'),
);

/** Per frame type, fields that must be present and values that break them. */
const BREAKABLE: Record<Exclude<FrameType, 'ping'>, Record<string, fc.Arbitrary<unknown>>> = {
  'session.open': {
    system: fc.constantFrom<unknown>(null, 1, [], { text: 'x' }, false),
    sessionId: notAServerId,
    resumeToken: fc.oneof(fc.constantFrom<unknown>('', null, 7), fc.constant('t'.repeat(129))),
  },
  'session.close': { sessionId: notAServerId, forget: fc.constantFrom<unknown>('yes', 1, 0, null, 'true', []) },
  'chat.send': {
    sessionId: notAServerId,
    content: fc.constantFrom<unknown>('', null, 42, ['hi'], { text: 'hi' }, true),
    params: fc.constantFrom<unknown>('fast', 1, [], null, true),
  },
  'generation.cancel': { genId: notAServerId },
  'generation.resume': {
    genId: notAServerId,
    afterSeq: fc.constantFrom<unknown>(-1, 1.5, '3', null, [], {}, 2 ** 53, 1e300, true),
  },
};

/** Required fields of each type, besides `type` and `id`. */
const REQUIRED: Record<Exclude<FrameType, 'ping'>, readonly string[]> = {
  'session.open': [],
  'session.close': ['sessionId'],
  'chat.send': ['sessionId', 'content'],
  'generation.cancel': ['genId'],
  'generation.resume': ['genId', 'afterSeq'],
};

/** A base frame of each breakable type with all its fields valid (references resolved at send time). */
function baseOf(type: Exclude<FrameType, 'ping'>): Pick<JsonCase, 'frame' | 'refs'> {
  switch (type) {
    case 'session.open':
      return { frame: { type }, refs: {} };
    case 'session.close':
      return { frame: { type }, refs: { sessionId: { known: 0 } } };
    case 'chat.send':
      return { frame: { type, content: 'Hello', params: { maxTokens: 2 } }, refs: { sessionId: { known: 0 } } };
    case 'generation.cancel':
      return { frame: { type }, refs: { genId: { known: 0 } } };
    case 'generation.resume':
      return { frame: { type, afterSeq: 0 }, refs: { genId: { known: 0 } } };
  }
}

/** Sets `field` of a base frame to `value`, taking it out of the references. */
function withField(type: Exclude<FrameType, 'ping'>, field: string, value: unknown): Pick<JsonCase, 'frame' | 'refs'> {
  const { frame, refs } = baseOf(type);
  const { [field as keyof JsonCase['refs']]: _dropped, ...otherRefs } = refs;
  return { frame: { ...frame, [field]: value }, refs: otherRefs };
}

function withoutField(type: Exclude<FrameType, 'ping'>, field: string): Pick<JsonCase, 'frame' | 'refs'> {
  const { frame, refs } = baseOf(type);
  const { [field]: _dropped, ...rest } = frame;
  const { [field as keyof JsonCase['refs']]: _droppedRef, ...otherRefs } = refs;
  return { frame: rest, refs: otherRefs };
}

const breakableType = fc.constantFrom(...(Object.keys(BREAKABLE) as Exclude<FrameType, 'ping'>[]));

const wrongField = breakableType
  .chain((type) => {
    const fields = BREAKABLE[type];
    return fc
      .constantFrom(...Object.keys(fields))
      .chain((field) => (fields[field] as fc.Arbitrary<unknown>).map((value) => ({ type, field, value })));
  })
  .map(({ type, field, value }) => ({
    label: `${type}: bad ${field}`,
    ...withField(type, field, value),
    code: 'bad_frame' as const,
  }));

const missingField = breakableType
  .filter((type) => REQUIRED[type].length > 0)
  .chain((type) => fc.constantFrom(...REQUIRED[type]).map((field) => ({ type, field })))
  .map(({ type, field }) => ({
    label: `${type}: no ${field}`,
    ...withoutField(type, field),
    code: 'bad_frame' as const,
  }));

/** Params the schema refuses: unknown keys and values out of range or of the wrong type. */
const badParams = fc
  .oneof(
    fc.constantFrom<Record<string, unknown>>(
      { maxTokens: 0 },
      { maxTokens: -1 },
      { maxTokens: 1.5 },
      { maxTokens: 1_000_001 },
      { maxTokens: '8' },
      { temperature: -0.1 },
      { temperature: 2.01 },
      { temperature: 'hot' },
      { topP: 0 },
      { topP: 1.1 },
      { topK: 1001 },
      { topK: 2.5 },
      { minP: 1.1 },
      { seed: -1 },
      { seed: 4_294_967_296 },
      { stop: 'end' },
      { stop: [''] },
      { stop: ['x'.repeat(65)] },
      { stop: Array.from({ length: 9 }, (_, i) => `s${i}`) },
      { reasoning: 'max' },
      { temprature: 0.5 },
      { maxTokens: 4, extra: true },
    ),
    clipped(anyText(12), 1, 30)
      .filter(
        (key) => !(key in { maxTokens: 1, temperature: 1, topP: 1, topK: 1, minP: 1, seed: 1, stop: 1, reasoning: 1 }),
      )
      .filter((key) => key !== '__proto__')
      .map((key) => ({ [key]: 1 })),
  )
  .map((params) => ({
    label: `chat.send: bad params ${JSON.stringify(params).slice(0, 40)}`,
    ...withField('chat.send', 'params', params),
    code: 'bad_frame' as const,
  }));

/** A type that is not a string (bad_frame) or an unknown string (unknown_type). */
const badType = fc.oneof(
  fc
    .constantFrom<unknown>(null, 1, true, [], {}, ['ping'], { type: 'ping' })
    .map((type) => ({ type, code: 'bad_frame' as const })),
  fc
    .oneof(
      fc.constantFrom('PING', 'Ping', 'ping ', ' ping', 'chat', 'chat_send', 'session.opened', 'pong', 'welcome', ''),
      anyText(20),
      fc.integer({ min: 1_000, max: 40_000 }).map((length) => 't'.repeat(length)),
    )
    .filter((type) => !(CLIENT_FRAME_TYPES as readonly string[]).includes(type))
    .map((type) => ({ type, code: 'unknown_type' as const })),
);

const typeMutation = fc.oneof(
  badType.map(({ type, code }) => ({
    label: `type ${JSON.stringify(type).slice(0, 30)}`,
    frame: { type },
    refs: {},
    code,
  })),
  fc.constant({ label: 'no type', frame: {}, refs: {}, code: 'bad_frame' as const }),
);

/** A deep nesting (up to 30,000 levels: under 64 KiB) where a string is required. */
const deepField = fc
  .record({
    type: fc.constantFrom('chat.send' as const, 'generation.cancel' as const),
    depth: fc.integer({ min: 1, max: 30_000 }),
  })
  .map(({ type, depth }) => {
    const field = type === 'chat.send' ? 'content' : 'genId';
    return {
      label: `${type}: ${field} nested ${depth} deep`,
      ...withField(type, field, DEEP),
      code: 'bad_frame' as const,
      deep: depth,
    };
  });

type Mutation = Pick<JsonCase, 'label' | 'frame' | 'refs'> & { code: ErrorCode; deep?: number };

/**
 * Deep nestings are rare: at 64 KiB one costs the server about 1.5 ms of JSON.parse (a flat frame
 * 10–40 µs), so more of them would make the attack a CPU benchmark rather than a protocol one.
 */
const mutation: fc.Arbitrary<Mutation> = fc.oneof(
  { weight: 10, arbitrary: wrongField },
  { weight: 10, arbitrary: missingField },
  { weight: 10, arbitrary: badParams },
  { weight: 10, arbitrary: typeMutation },
  { weight: 1, arbitrary: deepField },
);

/** A mutated frame with a usable id: an error with that id and the mutation's code. */
const mutatedCase: fc.Arbitrary<JsonCase> = fc
  .record({ mutation, prefix: anyText(40) })
  .map(({ mutation, prefix }) => ({
    shape: 'json',
    label: mutation.label,
    frame: mutation.frame,
    refs: mutation.refs,
    id: { prefix },
    ...(mutation.deep === undefined ? {} : { deep: mutation.deep }),
    answer: errorWithId(mutation.code),
  }));

/**
 * A valid frame whose id is missing or unusable (not a string, or longer than 64): one id-less
 * bad_frame. An empty id counts as no id either way: it can name no request.
 */
const badIdCase: fc.Arbitrary<JsonCase> = fc
  .record({
    valid: validFrame,
    id: fc.oneof(
      fc.constant<JsonCase['id']>({ missing: true }),
      fc.constantFrom<unknown>(42, null, true, {}, [], '', ['x']).map((bad): JsonCase['id'] => ({ bad })),
      fc.integer({ min: 65, max: 2_000 }).map((length): JsonCase['id'] => ({ bad: 'i'.repeat(length) })),
    ),
  })
  .map(({ valid, id }) => ({
    shape: 'json',
    label: `${valid.type}: id ${'missing' in id ? 'missing' : JSON.stringify((id as { bad: unknown }).bad).slice(0, 20)}`,
    frame: valid.frame,
    refs: valid.refs,
    id,
    answer: idLess(['bad_frame']),
  }));

// ---------------------------------------------------------------------------------------------
// Not JSON objects, and binary frames

/** Parses `text` as JSON; undefined when it is not JSON. */
function parsed(text: string): { value: unknown } | undefined {
  try {
    return { value: JSON.parse(text) };
  } catch {
    return undefined;
  }
}

const isJsonObject = (text: string) => {
  const result = parsed(text);
  return (
    result !== undefined && typeof result.value === 'object' && result.value !== null && !Array.isArray(result.value)
  );
};

/** Text that is no JSON object: bad_json when it is not JSON at all, bad_frame when it is another value. */
const notAnObject = fc
  .oneof(
    { weight: 40, arbitrary: anyText(60) },
    { weight: 20, arbitrary: fc.jsonValue({ maxDepth: 3 }).map((value) => JSON.stringify(value)) },
    {
      weight: 20,
      // A strict prefix of a JSON object is never JSON.
      arbitrary: fc.record({ valid: validCase, cut: fc.nat() }).map(({ valid, cut }) => {
        const text = JSON.stringify({ ...valid.frame, id: 'x' });
        return text.slice(0, cut % text.length);
      }),
    },
    {
      weight: 1,
      arbitrary: fc.integer({ min: 1, max: 30_000 }).map((depth) => `${'['.repeat(depth)}${']'.repeat(depth)}`),
    },
  )
  .filter((text) => !isJsonObject(text))
  .map((text): TextCase => {
    const code: ErrorCode = parsed(text) === undefined ? 'bad_json' : 'bad_frame';
    return { shape: 'text', label: `text (${code})`, text, answer: idLess([code]) };
  });

/** Objects nested up to 10,000 deep (under 64 KiB), with no type and no id: one id-less bad_frame. */
const deepObject = fc.integer({ min: 1, max: 10_000 }).map(
  (depth): TextCase => ({
    shape: 'text',
    label: `object nested ${depth} deep`,
    text: `${'{"a":'.repeat(depth)}1${'}'.repeat(depth)}`,
    answer: idLess(['bad_frame']),
  }),
);

const textCase: fc.Arbitrary<TextCase> = fc.oneof(
  { weight: 40, arbitrary: notAnObject },
  { weight: 1, arbitrary: deepObject },
);

/** Any bytes in a binary frame, valid JSON frames included: binary frames are refused with bad_frame. */
const binaryCase: fc.Arbitrary<BinaryCase> = fc
  .oneof(
    fc.uint8Array({ maxLength: 200 }),
    validCase.map((valid) => new TextEncoder().encode(JSON.stringify({ ...valid.frame, id: 'binary' }))),
  )
  .map((bytes) => ({ shape: 'binary', label: 'binary frame', bytes, answer: idLess(['bad_frame']) }));

/**
 * One attacker frame. Valid frames are a bit under half; chat.send is about one frame in 25, so
 * that the attack is mostly frame handling rather than token generation.
 */
export const frameCase: fc.Arbitrary<FrameCase> = fc.oneof(
  { weight: 9, arbitrary: validCase },
  { weight: 6, arbitrary: mutatedCase },
  { weight: 2, arbitrary: badIdCase },
  { weight: 3, arbitrary: textCase },
  { weight: 2, arbitrary: binaryCase },
);

// ---------------------------------------------------------------------------------------------
// Rendering at send time

/** What a connection knows when it renders a frame: its own sessions and generations, and fresh ids. */
export type RenderContext = {
  /** A request id unique on the connection, starting with (part of) `prefix`, 1–64 characters. */
  nextId(prefix: string): string;
  session(ref: Ref): { id: string; token: string | undefined };
  generation(ref: Ref): string;
};

export type Rendered = { data: string | Uint8Array; binary: boolean; id?: string; genId?: string };

export function renderFrame(frameCase: FrameCase, ctx: RenderContext): Rendered {
  if (frameCase.shape === 'text') return { data: frameCase.text, binary: false };
  if (frameCase.shape === 'binary') return { data: frameCase.bytes, binary: true };
  const { refs } = frameCase;
  const frame: Record<string, unknown> = { ...frameCase.frame };
  if (refs.sessionId !== undefined) {
    const session = ctx.session(refs.sessionId);
    frame.sessionId = session.id;
    if (refs.resumeToken === 'matching') frame.resumeToken = session.token ?? 'no-such-token';
  }
  const genId = refs.genId === undefined ? undefined : ctx.generation(refs.genId);
  if (genId !== undefined) frame.genId = genId;
  let id: string | undefined;
  if ('prefix' in frameCase.id) {
    id = ctx.nextId(frameCase.id.prefix);
    frame.id = id;
  } else if ('bad' in frameCase.id) frame.id = frameCase.id.bad;
  let data = JSON.stringify(frame);
  if (frameCase.deep !== undefined) {
    data = data.replace(JSON.stringify(DEEP), `${'['.repeat(frameCase.deep)}${']'.repeat(frameCase.deep)}`);
  }
  return { data, binary: false, ...(id === undefined ? {} : { id }), ...(genId === undefined ? {} : { genId }) };
}
