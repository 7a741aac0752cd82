import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chat, collect, openSession, startChat } from '../helpers/conversation.js';
import { startTestServer } from '../helpers/startTestServer.js';
import { TestClient } from '../helpers/TestClient.js';

/** The value of one sample line of the Prometheus text format (0 when absent). */
function sample(text: string, name: string): number {
  const line = text.split('\n').find((l) => l.startsWith(`${name} `));
  return line === undefined ? 0 : Number(line.slice(name.length + 1));
}

describe('metrics', () => {
  let harness: Awaited<ReturnType<typeof startTestServer>>;
  const scrape = async () => {
    const response = await fetch(`${harness.httpUrl}/metrics`);
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toContain('text/plain');
    return response.text();
  };
  beforeAll(async () => {
    harness = await startTestServer({ maxConcurrent: 1, maxQueued: 0 });
  });
  afterAll(() => harness.stop());

  it('exports latency histograms, token counters, finish reasons, errors and gauges that move with real traffic', async () => {
    const before = await scrape();
    const client = await TestClient.connect(harness.wsUrl);
    const { sessionId } = await openSession(client);
    const first = await chat(client, sessionId, 'Once upon a time', { maxTokens: 30, temperature: 0 });
    const second = await chat(client, sessionId, 'And then?', { maxTokens: 20, temperature: 0 });
    const { sessionId: other } = await openSession(client);
    const long = await startChat(client, sessionId, 'A long one', { maxTokens: 2000, temperature: 0 });
    await client.next('token', (f) => f.genId === long);
    client.send({ type: 'chat.send', id: 'no-room', sessionId: other, content: 'Hi' });
    await client.next('error', (f) => f.id === 'no-room');
    client.send({ type: 'generation.cancel', id: 'stop', genId: long });
    const cancelled = await collect(client, long);
    client.sendRaw('not json');
    await client.next('error', (f) => f.code === 'bad_json');

    const after = await scrape();
    const delta = (name: string) => sample(after, name) - sample(before, name);
    const tokens = [first, second, cancelled].reduce((sum, a) => sum + a.done.usage.completionTokens, 0);
    expect(delta('llmchat_generation_tokens_total')).toBe(tokens);
    expect(delta('llmchat_prompt_tokens_total')).toBe(
      [first, second, cancelled].reduce((sum, a) => sum + a.done.usage.promptTokens, 0),
    );
    expect(delta('llmchat_time_to_first_token_seconds_count')).toBe(3);
    expect(delta('llmchat_inter_token_latency_seconds_count')).toBe(tokens - 3);
    expect(delta('llmchat_request_queue_time_seconds_count')).toBe(3);
    expect(delta('llmchat_e2e_request_latency_seconds_count')).toBe(3);
    expect(delta('llmchat_request_success_total{finished_reason="cancelled"}')).toBe(1);
    expect(delta('llmchat_cancellations_total')).toBe(1);
    expect(delta('llmchat_errors_total{code="bad_json"}')).toBe(1);
    expect(delta('llmchat_errors_total{code="queue_full"}')).toBe(1);
    expect(delta('llmchat_rejected_requests_total{reason="queue_full"}')).toBe(1);
    expect(sample(after, 'llmchat_connections')).toBe(1);
    expect(sample(after, 'llmchat_sessions')).toBeGreaterThanOrEqual(2);
    expect(sample(after, 'llmchat_num_requests_running')).toBe(0);
    expect(sample(after, 'llmchat_num_requests_waiting')).toBe(0);
    expect(after).toContain('llmchat_process_cpu_user_seconds_total');
    await client.close();
  });
});
