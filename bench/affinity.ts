import { chat, openSession } from '../test/helpers/conversation.js';
import { TestClient } from '../test/helpers/TestClient.js';
import { median } from '../tooling/latency.js';

export type AffinityResult = {
  promptTokens: number;
  affine: { ttftMs: number; cachedPromptTokens: number };
  reevaluated: { ttftMs: number; cachedPromptTokens: number };
};

const FIRST = { maxTokens: 100, temperature: 0, seed: 1 } as const;
/** A long first message (about 900 tokens), as when a user pastes a document into the chat. */
const DOCUMENT =
  'Once upon a time there was a little girl named Lily. She liked to play in the park with her dog. '.repeat(40);
const SECOND = { maxTokens: 8, temperature: 0, seed: 1 } as const;

/**
 * A session's second turn on a server with one sequence: once right after its first turn (its
 * KV cache still resident), once after another session took the sequence (re-evaluated from
 * the stored history). Both sessions hold the same history (temperature 0, same seed).
 */
export async function measureAffinity(wsUrl: string, repeats: number): Promise<AffinityResult> {
  const client = await TestClient.connect(wsUrl);
  const affine: Array<{ ttftMs: number; cachedPromptTokens: number; promptTokens: number }> = [];
  const reevaluated: Array<{ ttftMs: number; cachedPromptTokens: number }> = [];
  for (let repeat = 0; repeat < repeats; repeat++) {
    const kept = await openSession(client);
    await chat(client, kept.sessionId, DOCUMENT, FIRST);
    const second = await chat(client, kept.sessionId, 'What happened next?', SECOND);
    affine.push({ ...second.done.usage, ttftMs: second.done.timings.ttftMs ?? Number.NaN });

    const evicted = await openSession(client);
    const intruder = await openSession(client);
    await chat(client, evicted.sessionId, DOCUMENT, FIRST);
    await chat(client, intruder.sessionId, 'A big red ball', { maxTokens: 50 });
    const again = await chat(client, evicted.sessionId, 'What happened next?', SECOND);
    reevaluated.push({ ...again.done.usage, ttftMs: again.done.timings.ttftMs ?? Number.NaN });
  }
  await client.close();
  return {
    promptTokens: median(affine.map((run) => run.promptTokens)),
    affine: {
      ttftMs: median(affine.map((r) => r.ttftMs)),
      cachedPromptTokens: median(affine.map((r) => r.cachedPromptTokens)),
    },
    reevaluated: {
      ttftMs: median(reevaluated.map((r) => r.ttftMs)),
      cachedPromptTokens: median(reevaluated.map((r) => r.cachedPromptTokens)),
    },
  };
}
