import { describe, expect, it } from 'vitest';
import { chat, openSession } from '../helpers/conversation.js';
import { startTestServer } from '../helpers/startTestServer.js';
import { TestClient } from '../helpers/TestClient.js';

describe('logs', () => {
  it('writes one JSON line per connection open and close and per generation end, with ids and timings', async () => {
    const lines: string[] = [];
    const harness = await startTestServer({}, { logLines: lines });
    const client = await TestClient.connect(harness.wsUrl);
    const { sessionId } = await openSession(client);
    const answer = await chat(client, sessionId, 'Tell me about the moon', { maxTokens: 10 });
    await client.close();
    await harness.stop();

    const entries = lines.map((line) => JSON.parse(line) as Record<string, unknown>);
    const opened = entries.filter((e) => e.msg === 'connection open');
    const closed = entries.filter((e) => e.msg === 'connection closed');
    const done = entries.filter((e) => e.msg === 'generation done');
    expect(opened).toHaveLength(1);
    expect(closed).toHaveLength(1);
    expect(opened[0]?.connectionId).toBe(client.welcome.connectionId);
    expect(closed[0]?.connectionId).toBe(client.welcome.connectionId);
    expect(done).toEqual([
      expect.objectContaining({
        level: 30,
        genId: answer.genId,
        sessionId,
        finish: answer.done.finish,
        completionTokens: answer.done.usage.completionTokens,
        promptTokens: answer.done.usage.promptTokens,
        ttftMs: expect.any(Number),
        totalMs: expect.any(Number),
      }),
    ]);
    expect(lines.join('\n')).not.toContain('moon');
  });
});
