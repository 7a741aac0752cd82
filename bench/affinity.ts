import { ChatClient } from '../client/ChatClient.js';
import { nodeSockets } from '../client/node.js';
import type { GenerationParams } from '../protocol/index.js';
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
  const client = await ChatClient.connect(wsUrl, { createSocket: nodeSockets() });
  /** One turn to its end: its usage and time to first token. */
  const turn = async (sessionId: string, content: string, params: GenerationParams) => {
    const done = await client.chat(sessionId, content, params).done;
    return { ...done.usage, ttftMs: done.timings.ttftMs ?? Number.NaN };
  };
  const affine: Array<{ ttftMs: number; cachedPromptTokens: number; promptTokens: number }> = [];
  const reevaluated: Array<{ ttftMs: number; cachedPromptTokens: number }> = [];
  for (let repeat = 0; repeat < repeats; repeat++) {
    const kept = await client.openSession();
    await turn(kept.sessionId, DOCUMENT, FIRST);
    affine.push(await turn(kept.sessionId, 'What happened next?', SECOND));

    const evicted = await client.openSession();
    const intruder = await client.openSession();
    await turn(evicted.sessionId, DOCUMENT, FIRST);
    await turn(intruder.sessionId, 'A big red ball', { maxTokens: 50 });
    reevaluated.push(await turn(evicted.sessionId, 'What happened next?', SECOND));
    for (const { sessionId } of [kept, evicted, intruder]) await client.closeSession(sessionId, { forget: true });
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
