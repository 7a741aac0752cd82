import { describe, expect, it } from 'vitest';
import { type ChatMessage, ContextOverflowError } from '../../server/engine/Engine.js';
import { countTokensInSlices, fitPrompt } from '../../server/engine/fitPrompt.js';

/** A stand-in tokenizer for the fitting logic: one token per word, four tokens of template per message. */
const words = (text: string) => text.split(/\s+/).filter((word) => word !== '').length;

function fit(messages: ChatMessage[], budget: number) {
  let counted = 0;
  let rendered = 0;
  const result = fitPrompt(messages, {
    budget,
    countTokens: async (message) => {
      counted += 1;
      return words(message.content);
    },
    render: (kept) => {
      rendered += 1;
      return { kept, tokenCount: kept.reduce((sum, message) => sum + words(message.content) + 4, 0) };
    },
    describeRoom: 'test room',
  });
  return { result, counts: () => ({ counted, rendered }) };
}

const say = (role: ChatMessage['role'], size: number): ChatMessage => ({ role, content: 'w '.repeat(size) });

describe('fitting a prompt to the context', () => {
  it('refuses a lone message too big for the context instead of dropping it', async () => {
    await expect(fit([say('user', 500)], 100).result).rejects.toThrow(ContextOverflowError);
    await expect(fit([say('system', 10), say('user', 500)], 100).result).rejects.toThrow(/newest message/);
    await expect(fit([say('user', 10), say('assistant', 10), say('user', 500)], 100).result).rejects.toThrow(
      ContextOverflowError,
    );
  });

  it('keeps the newest turn whole: the question with its tool calls and results, or refuses', async () => {
    const call = (id: string): ChatMessage => ({
      ...say('assistant', 2),
      toolCalls: [{ id, name: 'f', arguments: '{}' }],
    });
    const result = (id: string, size: number): ChatMessage => ({ ...say('tool', size), toolCallId: id });
    const older = [say('user', 30), say('assistant', 30)];
    const turn = [say('user', 5), call('a'), result('a', 30), call('b'), result('b', 30)];
    const { kept } = await fit([...older, ...turn], 100).result;
    expect(kept).toEqual(turn);
    // Results too large for the context with their question: refused, never sent without it.
    await expect(
      fit([...older, say('user', 5), call('a'), result('a', 60), call('b'), result('b', 60)], 100).result,
    ).rejects.toThrow(ContextOverflowError);
  });

  it('refuses a message just over the budget after rendering it exactly', async () => {
    // 97 words + 4 of template: under the estimate's hopeless threshold, over the budget.
    await expect(fit([say('user', 97)], 100).result).rejects.toThrow(/101 prompt tokens/);
  });

  it('keeps the system prompt and the newest turns, starting at a user message', async () => {
    const history = [say('system', 5)];
    for (let turn = 0; turn < 10; turn++) history.push(say('user', 10), say('assistant', 10));
    history.push(say('user', 10));
    const { kept } = await fit(history, 80).result;
    expect(kept[0]).toBe(history[0]);
    expect(kept.at(-1)).toBe(history.at(-1));
    expect(kept[1]?.role).toBe('user');
    expect(kept.reduce((sum, message) => sum + words(message.content) + 4, 0)).toBeLessThanOrEqual(80);
    expect(kept.length).toBeGreaterThan(3);
  });

  it('counts only the newest messages that can fit, however long the history', async () => {
    const history: ChatMessage[] = [];
    for (let turn = 0; turn < 300; turn++) history.push(say('user', 5), say('assistant', 5));
    history.push(say('user', 5));
    const fitted = fit(history, 100);
    await fitted.result;
    expect(fitted.counts().counted).toBeLessThan(12);
    expect(fitted.counts().rendered).toBeLessThanOrEqual(2);
  });

  it('takes the whole conversation when it fits', async () => {
    const history = [say('system', 3), say('user', 3), say('assistant', 3), say('user', 3)];
    expect((await fit(history, 1000).result).kept).toEqual(history);
  });
});

describe('counting tokens in slices', () => {
  it('tokenizes a long text a slice at a time, yielding to the event loop between slices', async () => {
    const slices: Array<{ length: number; othersRan: boolean }> = [];
    let othersRan = false;
    setImmediate(() => {
      othersRan = true;
    });
    const count = await countTokensInSlices('a'.repeat(20_000), (slice) => {
      slices.push({ length: slice.length, othersRan });
      return 1;
    });
    expect(count).toBe(5);
    expect(slices.map((slice) => slice.length)).toEqual([4096, 4096, 4096, 4096, 3616]);
    expect(slices.map((slice) => slice.othersRan)).toEqual([false, true, true, true, true]);
  });
});
