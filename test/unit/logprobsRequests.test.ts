import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Token, TokenLogprob } from '../../protocol/index.js';
import { TokenOutbox } from '../../server/gateway/TokenOutbox.js';
import { runsAfter } from '../../server/scheduler/Generation.js';
import { EchoEngine } from '../doubles/EchoEngine.js';
import { nextId, openSession } from '../helpers/conversation.js';
import { postJson } from '../helpers/postJson.js';
import { startTestServer } from '../helpers/startTestServer.js';
import { TestClient } from '../helpers/TestClient.js';

const entry = (token: string): TokenLogprob => ({ token, logprob: -1, bytes: [...Buffer.from(token)], top: [] });

describe('logprobs across merged token runs', () => {
  it('keeps every token’s entry, in order, when a slow reader’s frames are coalesced', () => {
    const outbox = new TokenOutbox();
    const frame = (seq: number, text: string): Token => ({
      type: 'token',
      genId: 'g1',
      seq,
      text,
      channel: 'content',
      logprobs: [entry(text)],
    });
    const first = frame(1, 'Once');
    outbox.add(first);
    outbox.add(frame(2, ' upon'));
    const [run] = outbox.take();
    expect(run?.text).toBe('Once upon');
    expect(run?.logprobs?.map((e) => e.token)).toEqual(['Once', ' upon']);
    // The frame given first is not changed by what merged into its run.
    expect(first.logprobs).toHaveLength(1);
  });

  it('merges a resumed answer’s chunks with their entries, leaving the kept chunks as they were', () => {
    const chunks = [
      { seq: 1, text: 'a', channel: 'content' as const, logprobs: [entry('a')] },
      { seq: 2, text: 'b', channel: 'content' as const, logprobs: [entry('b')] },
      { seq: 3, text: 'c', channel: 'reasoning' as const, logprobs: [entry('c')] },
    ];
    const runs = runsAfter(chunks, 0);
    expect(runs.map((run) => run.logprobs?.map((e) => e.token))).toEqual([['a', 'b'], ['c']]);
    expect(chunks[0]?.logprobs).toHaveLength(1);
  });
});

describe('logprobs in front of upstream engines (engine double)', () => {
  let harness: Awaited<ReturnType<typeof startTestServer>>;
  beforeAll(async () => {
    const engine = new EchoEngine();
    // What an UpstreamPool says of itself: its servers' logprobs are not mapped back.
    Object.assign(engine.info, { backend: 'upstream' });
    harness = await startTestServer({}, { engine });
  });
  afterAll(() => harness.stop());

  const post = (path: string, body: unknown) => postJson(harness.httpUrl, path, body);

  it('refuses logprobs with 400 unsupported_parameter on both HTTP endpoints', async () => {
    const chat = await post('/v1/chat/completions', {
      messages: [{ role: 'user', content: 'hi' }],
      max_tokens: 2,
      logprobs: true,
    });
    expect([chat.status, chat.body.error?.code, chat.body.error?.param]).toEqual([
      400,
      'unsupported_parameter',
      'logprobs',
    ]);
    expect(chat.body.error?.message).toContain('upstream');
    const text = await post('/v1/completions', { prompt: 'hi', max_tokens: 2, logprobs: 1 });
    expect([text.status, text.body.error?.code]).toEqual([400, 'unsupported_parameter']);
    const without = await post('/v1/chat/completions', { messages: [{ role: 'user', content: 'hi' }], max_tokens: 2 });
    expect(without.status).toBe(200);
  });

  it('refuses params.logprobs in chat.send with an unsupported_parameter error frame', async () => {
    const client = await TestClient.connect(harness.wsUrl);
    const { sessionId } = await openSession(client);
    const id = nextId('chat');
    client.send({ type: 'chat.send', id, sessionId, content: 'hi', params: { maxTokens: 2, logprobs: { top: 1 } } });
    const error = await client.next('error', (frame) => frame.id === id);
    expect([error.code, error.message]).toEqual(['unsupported_parameter', expect.stringContaining('params.logprobs')]);
    await client.close();
  });
});
