import { setTimeout as delay } from 'node:timers/promises';
import { isDeepStrictEqual } from 'node:util';
import fc from 'fast-check';
import type { FinishReason, GenerationDone, HistoryMessage, ServerFrame, Token } from '../../protocol/index.js';
import { RawWebSocket, type WirePlan } from './RawWebSocket.js';

/**
 * Client behaviours as fast-check commands (model-based testing): a client holds one session and,
 * in a generated order, chats, cancels, drops its connection mid-answer and resumes, stops reading
 * for a while, sends frames in pieces, and reattaches. The model is the history the session must
 * hold: every answer exactly as the client received it.
 */

export type Model = { history: HistoryMessage[] };

/** The real client: its current connection and session, and everything it opened. */
export class Real {
  readonly clients: RawWebSocket[] = [];
  /** Request ids whose error frame the scenario provoked on purpose. */
  readonly expectedErrors = new Set<string>();
  private counter = 0;

  constructor(
    readonly port: number,
    public client: RawWebSocket,
    readonly sessionId: string,
    readonly resumeToken: string,
  ) {
    this.clients.push(client);
  }

  nextId(kind: string): string {
    return `${kind}-${++this.counter}`;
  }

  async reconnect(): Promise<RawWebSocket> {
    this.client = await RawWebSocket.connect(this.port);
    this.clients.push(this.client);
    return this.client;
  }

  /** Reattaches the session on the current connection and returns what the server says it holds. */
  async reattach(): Promise<HistoryMessage[]> {
    const id = this.nextId('reattach');
    await this.client.send({ type: 'session.open', id, sessionId: this.sessionId, resumeToken: this.resumeToken });
    const opened = await this.client.answer(id);
    if (opened.type !== 'session.opened' || !opened.resumed) fail(`The reattach got ${JSON.stringify(opened)}`);
    return opened.history;
  }
}

type Then =
  | { kind: 'read' }
  | { kind: 'cancel'; afterTokens: number | 'last but one' }
  | { kind: 'drop'; afterTokens: number; how: 'terminate' | 'close'; resumeFrom: 'last' | 'zero' | 'middle' }
  | { kind: 'pause'; afterTokens: number; pauseMs: number };

type ChatSpec = { content: string; maxTokens: number; plan: WirePlan; then: Then };

const tokensOf = (client: RawWebSocket, genId: string): Token[] =>
  client.frames.filter((frame): frame is Token => frame.type === 'token' && frame.genId === genId);
const doneOf = (client: RawWebSocket, genId: string): GenerationDone | undefined =>
  client.frames.find((frame): frame is GenerationDone => frame.type === 'generation.done' && frame.genId === genId);
const textOf = (tokens: readonly Token[]): string => tokens.map((token) => token.text).join('');

function fail(message: string): never {
  throw new Error(message);
}

/**
 * Token frames after `afterSeq` in order, with no gap or repeat: each `seq` above the last (a
 * coalesced frame advances it by several), the last one the answer's completion tokens.
 */
function checkStream(tokens: readonly Token[], afterSeq: number, done: GenerationDone): void {
  let last = afterSeq;
  for (const token of tokens) {
    if (token.seq <= last) fail(`token seq ${token.seq} after ${last}: ${tokens.map((t) => t.seq).join(',')}`);
    last = token.seq;
  }
  if (last !== done.usage.completionTokens) {
    fail(`the last seq is ${last} but generation.done counts ${done.usage.completionTokens} tokens`);
  }
}

/** Waits until `count` tokens of the generation arrived, or it ended. */
function untilTokensOrDone(client: RawWebSocket, genId: string, count: number): Promise<true> {
  return client.waitFor(
    () => (tokensOf(client, genId).length >= count || doneOf(client, genId) !== undefined ? true : undefined),
    `${count} tokens of ${genId}`,
  );
}

function untilDone(client: RawWebSocket, genId: string): Promise<GenerationDone> {
  return client.waitFor(() => doneOf(client, genId), `generation.done of ${genId}`);
}

/** Frames of one generation on one connection, in the documented order: started, tokens, done. */
function checkOrder(client: RawWebSocket, genId: string): void {
  const kinds = client.frames
    .filter(
      (frame) =>
        'genId' in frame && frame.genId === genId && frame.type !== 'generation.queued' && frame.type !== 'error',
    )
    .map((frame) => frame.type);
  const expected = /^generation\.started( token)* generation\.done$/;
  if (!expected.test(kinds.join(' '))) fail(`frames of ${genId} out of order: ${kinds.join(' ')}`);
}

/** Sends a chat.send (laid on the wire as the plan says) and returns its genId. */
async function startChat(real: Real, spec: Pick<ChatSpec, 'content' | 'maxTokens' | 'plan'>): Promise<string> {
  const id = real.nextId('chat');
  const params = { maxTokens: spec.maxTokens, temperature: 0 };
  await real.client.send(
    { type: 'chat.send', id, sessionId: real.sessionId, content: spec.content, params },
    spec.plan,
  );
  const queued = await real.client.answer(id);
  if (queued.type !== 'generation.queued') fail(`chat.send got ${JSON.stringify(queued)}`);
  return queued.genId;
}

function recordTurn(model: Model, content: string, answer: string, finish: FinishReason): void {
  // A turn without text leaves no trace; an answer that did not simply stop says how it ended (README, Protocol v1).
  if (answer === '') return;
  const assistant =
    finish === 'stop'
      ? { role: 'assistant' as const, content: answer }
      : { role: 'assistant' as const, content: answer, finish };
  model.history.push({ role: 'user', content }, assistant);
}

class ChatCommand implements fc.AsyncCommand<Model, Real> {
  constructor(readonly spec: ChatSpec) {}

  check(): boolean {
    return true;
  }

  async run(model: Model, real: Real): Promise<void> {
    const genId = await startChat(real, this.spec);
    const { then } = this.spec;
    const answer =
      then.kind === 'read'
        ? await this.read(real, genId)
        : then.kind === 'cancel'
          ? await this.cancel(
              real,
              genId,
              then.afterTokens === 'last but one' ? this.spec.maxTokens - 1 : then.afterTokens,
            )
          : then.kind === 'drop'
            ? await this.dropAndResume(real, genId, then)
            : await this.pauseReading(real, genId, then);
    recordTurn(model, this.spec.content, answer, (await untilDone(real.client, genId)).finish);
  }

  private async read(real: Real, genId: string): Promise<string> {
    const done = await untilDone(real.client, genId);
    const tokens = tokensOf(real.client, genId);
    checkStream(tokens, 0, done);
    checkOrder(real.client, genId);
    if (done.finish !== 'stop' && done.finish !== 'length') fail(`finish ${done.finish}`);
    return textOf(tokens);
  }

  /** Cancels after some tokens: the ack comes right before generation.done, or after it when the answer was already done. */
  private async cancel(real: Real, genId: string, afterTokens: number): Promise<string> {
    const { client } = real;
    await untilTokensOrDone(client, genId, afterTokens);
    const id = real.nextId('cancel');
    await client.send({ type: 'generation.cancel', id, genId });
    const ack = await client.answer(id);
    const done = await untilDone(client, genId);
    if (ack.type !== 'cancel.ack') fail(`generation.cancel got ${JSON.stringify(ack)}`);
    const ackAt = client.frames.indexOf(ack);
    const doneAt = client.frames.indexOf(done);
    if (ack.status === 'cancelled') {
      // README: "the ack comes once it has stopped, right before its generation.done with finish cancelled".
      if (doneAt !== ackAt + 1) fail(`cancel.ack at ${ackAt} is not right before generation.done at ${doneAt}`);
      if (done.finish !== 'cancelled') {
        fail(
          `cancel.ack said cancelled, but generation.done finished ${done.finish} ` +
            `(${done.usage.completionTokens} of ${this.spec.maxTokens} tokens; cancelled after ${afterTokens})`,
        );
      }
    } else if (ack.status === 'already_done') {
      // Either it had ended before the cancel arrived, or it ended on its own before the cancel took
      // effect: then the ack comes right before its generation.done, whose finish is not cancelled.
      const endedOnItsOwn = doneAt === ackAt + 1 && done.finish !== 'cancelled';
      if (doneAt > ackAt && !endedOnItsOwn) fail('already_done before the generation.done');
    } else fail(`cancel.ack ${ack.status} for a generation of this session`);
    if (ack.completionTokens !== done.usage.completionTokens) {
      fail(`cancel.ack counts ${ack.completionTokens} tokens, generation.done ${done.usage.completionTokens}`);
    }
    const tokens = tokensOf(client, genId);
    checkStream(tokens, 0, done);
    return textOf(tokens);
  }

  /**
   * Loses the connection mid-answer, reconnects, reattaches and resumes from a seq it holds: the
   * replay must continue exactly where that seq ends, with nothing missing or repeated.
   */
  private async dropAndResume(real: Real, genId: string, then: Extract<Then, { kind: 'drop' }>): Promise<string> {
    const old = real.client;
    await untilTokensOrDone(old, genId, then.afterTokens);
    if (then.how === 'terminate') await old.terminate();
    else await old.close();
    const held = tokensOf(old, genId);
    const afterSeq =
      then.resumeFrom === 'zero'
        ? 0
        : then.resumeFrom === 'last'
          ? (held.at(-1)?.seq ?? 0)
          : (held[Math.floor(held.length / 2)]?.seq ?? 0);
    const client = await real.reconnect();
    await real.reattach();
    const id = real.nextId('resume');
    await client.send({ type: 'generation.resume', id, genId, afterSeq });
    const done = await untilDone(client, genId);
    const errors = client.answersTo(id).filter((frame) => frame.type === 'error');
    if (errors.length > 0) fail(`generation.resume got ${JSON.stringify(errors[0])}`);
    const resumed = tokensOf(client, genId);
    checkStream(resumed, afterSeq, done);
    if (done.finish !== 'stop' && done.finish !== 'length') fail(`finish ${done.finish}`);
    const full = textOf(held.filter((token) => token.seq <= afterSeq)) + textOf(resumed);
    if (!full.startsWith(textOf(held)))
      fail(`the resumed text does not continue what was held: ${JSON.stringify({ held: textOf(held), full })}`);
    return full;
  }

  /** Stops reading for a while mid-answer: afterwards every frame arrives, in order. */
  private async pauseReading(real: Real, genId: string, then: Extract<Then, { kind: 'pause' }>): Promise<string> {
    await untilTokensOrDone(real.client, genId, then.afterTokens);
    real.client.pause();
    await delay(then.pauseMs);
    real.client.resume();
    return this.read(real, genId);
  }

  toString(): string {
    return `chat(${JSON.stringify(this.spec)})`;
  }
}

/** A ping laid on the wire in pieces: the pong still comes. */
class PingCommand implements fc.AsyncCommand<Model, Real> {
  constructor(readonly plan: WirePlan) {}

  check(): boolean {
    return true;
  }

  async run(_model: Model, real: Real): Promise<void> {
    const id = real.nextId('ping');
    await real.client.send({ type: 'ping', id }, this.plan);
    const pong = await real.client.answer(id);
    if (pong.type !== 'pong') fail(`ping got ${JSON.stringify(pong)}`);
  }

  toString(): string {
    return `ping(${JSON.stringify(this.plan)})`;
  }
}

/** Reattaches the session, on a new connection or the same one: its history is every answer as received. */
class ReattachCommand implements fc.AsyncCommand<Model, Real> {
  constructor(readonly where: 'same connection' | 'new connection') {}

  check(): boolean {
    return true;
  }

  async run(model: Model, real: Real): Promise<void> {
    if (this.where === 'new connection') {
      await real.client.close();
      await real.reconnect();
    }
    const history = await real.reattach();
    if (!isDeepStrictEqual(history, model.history)) {
      fail(
        `the session holds ${JSON.stringify(history).slice(0, 600)}\nbut the client received ${JSON.stringify(model.history).slice(0, 600)}`,
      );
    }
  }

  toString(): string {
    return `reattach(${this.where})`;
  }
}

/** Two chat.send back to back: the second is session_busy, naming the first's genId. */
class BusyCommand implements fc.AsyncCommand<Model, Real> {
  constructor(readonly content: string) {}

  check(): boolean {
    return true;
  }

  async run(model: Model, real: Real): Promise<void> {
    const first = real.nextId('chat');
    const second = real.nextId('busy');
    real.expectedErrors.add(second);
    const params = { maxTokens: 24, temperature: 0 };
    const frame = { type: 'chat.send', sessionId: real.sessionId, content: this.content, params };
    await real.client.send({ ...frame, id: first });
    await real.client.send({ ...frame, id: second });
    const queued = await real.client.answer(first);
    const busy = await real.client.answer(second);
    if (queued.type !== 'generation.queued') fail(`chat.send got ${JSON.stringify(queued)}`);
    if (busy.type !== 'error' || busy.code !== 'session_busy' || busy.genId !== queued.genId) {
      fail(`a second chat.send on a busy session got ${JSON.stringify(busy)}`);
    }
    const done = await untilDone(real.client, queued.genId);
    const tokens = tokensOf(real.client, queued.genId);
    checkStream(tokens, 0, done);
    recordTurn(model, this.content, textOf(tokens), done.finish);
  }

  toString(): string {
    return `busy(${JSON.stringify(this.content)})`;
  }
}

// ---------------------------------------------------------------------------------------------
// Arbitraries

const content = fc.oneof(
  fc.constantFrom('Once upon a time', 'The cat sat', 'Tell me about the moon', 'Lily went'),
  fc.string({ unit: 'grapheme', minLength: 1, maxLength: 30 }),
);

export const wirePlan: fc.Arbitrary<WirePlan> = fc.oneof(
  { weight: 2, arbitrary: fc.constant({ fragments: 1, pingBetween: false, tcpPieces: 1, pauseMs: 0 }) },
  {
    weight: 3,
    arbitrary: fc.record({
      fragments: fc.integer({ min: 1, max: 6 }),
      pingBetween: fc.boolean(),
      tcpPieces: fc.integer({ min: 1, max: 12 }),
      pauseMs: fc.integer({ min: 0, max: 15 }),
    }),
  },
);

const afterTokens = fc.integer({ min: 0, max: 30 });

const then: fc.Arbitrary<Then> = fc.oneof(
  fc.constant({ kind: 'read' as const }),
  // Early, or when the client holds all but the last token (the answer may end on its own meanwhile).
  fc
    .oneof(afterTokens, fc.constant('last but one' as const))
    .map((after) => ({ kind: 'cancel' as const, afterTokens: after })),
  fc.record({
    kind: fc.constant('drop' as const),
    afterTokens,
    how: fc.constantFrom('terminate' as const, 'close' as const),
    resumeFrom: fc.constantFrom('last' as const, 'zero' as const, 'middle' as const),
  }),
  fc.record({ kind: fc.constant('pause' as const), afterTokens, pauseMs: fc.integer({ min: 10, max: 300 }) }),
);

/** Mostly chat turns (read, cancelled, dropped and resumed, paused), with pings, reattaches and busy sends between. */
export const commands = fc.commands(
  [
    fc.oneof(
      {
        weight: 6,
        arbitrary: fc
          .record({ content, maxTokens: fc.integer({ min: 1, max: 48 }), plan: wirePlan, then })
          .map((spec): fc.AsyncCommand<Model, Real> => new ChatCommand(spec)),
      },
      { weight: 1, arbitrary: wirePlan.map((plan): fc.AsyncCommand<Model, Real> => new PingCommand(plan)) },
      {
        weight: 1,
        arbitrary: fc
          .constantFrom('same connection' as const, 'new connection' as const)
          .map((where): fc.AsyncCommand<Model, Real> => new ReattachCommand(where)),
      },
      { weight: 1, arbitrary: content.map((text): fc.AsyncCommand<Model, Real> => new BusyCommand(text)) },
    ),
  ],
  { maxCommands: 6 },
);

export const system = fc.option(fc.oneof(fc.constant('You tell short stories.'), fc.string({ maxLength: 40 })), {
  nil: undefined,
});

/** Runs one generated scenario on a session of its own, then checks the session and every frame received. */
export async function runScenario(
  port: number,
  systemPrompt: string | undefined,
  cmds: Iterable<fc.AsyncCommand<Model, Real>>,
): Promise<void> {
  const client = await RawWebSocket.connect(port);
  const openId = 'open';
  await client.send({
    type: 'session.open',
    id: openId,
    ...(systemPrompt === undefined ? {} : { system: systemPrompt }),
  });
  const opened = await client.answer(openId);
  if (opened.type !== 'session.opened') fail(`session.open got ${JSON.stringify(opened)}`);
  const real = new Real(port, client, opened.sessionId, opened.resumeToken);
  const model: Model = { history: systemPrompt ? [{ role: 'system', content: systemPrompt }] : [] };
  try {
    await fc.asyncModelRun(() => ({ model, real }), cmds);
    await new ReattachCommand('new connection').run(model, real);
    checkFrames(real);
  } finally {
    await Promise.all(real.clients.map((each) => each.terminate()));
  }
}

/** Every frame decoded against the schema, and no error frame but the ones provoked on purpose. */
function checkFrames(real: Real): void {
  for (const client of real.clients) {
    if (client.violations.length > 0) fail(client.violations.join('\n'));
    const errors = client.frames.filter(
      (frame): frame is Extract<ServerFrame, { type: 'error' }> =>
        frame.type === 'error' && !real.expectedErrors.has(frame.id ?? ''),
    );
    if (errors.length > 0) fail(`unexpected error frames: ${JSON.stringify(errors).slice(0, 500)}`);
  }
}
