import { setImmediate as nextTurn } from 'node:timers/promises';
import type { ChatMessage } from './Engine.js';
import { ContextOverflowError } from './Engine.js';

/** What one rendering of a prompt costs, exactly. */
export type RenderedPrompt = { tokenCount: number };

export type FitPromptOptions<R extends RenderedPrompt> = {
  /** Tokens the prompt may take. */
  budget: number;
  /** A message's content tokens, roughly (the caller caches it per message). */
  countTokens: (message: ChatMessage) => Promise<number>;
  /** The messages in the chat format, tokenized exactly. */
  render: (messages: ChatMessage[]) => R;
  /** For the overflow message. */
  describeRoom: string;
};

/** Role markers and separators a chat template adds around each message, roughly. */
const MESSAGE_OVERHEAD_TOKENS = 8;
/** Past this multiple of the budget by estimate, the newest message cannot fit: no exact render. */
const HOPELESS_FACTOR = 1.25;

/**
 * The longest suffix of the conversation that fits `budget`: every system message, then the
 * newest turns, starting at a user message. The newest turn (the last user message and what
 * followed it: tool calls and their results) is never cut: when it cannot fit,
 * ContextOverflowError. A model shown a tool result without its question would answer nothing. Messages are counted newest first and only until the budget is
 * spent, and the exact rendering runs on what fits, so the work is bounded by the context size,
 * not by the length of the stored history.
 */
export async function fitPrompt<R extends RenderedPrompt>(
  messages: readonly ChatMessage[],
  { budget, countTokens, render, describeRoom }: FitPromptOptions<R>,
): Promise<R> {
  const system = messages.filter((message) => message.role === 'system');
  const turns = messages.filter((message) => message.role !== 'system');
  const costs = new Map<ChatMessage, number>();
  const cost = async (message: ChatMessage) => {
    const known = costs.get(message);
    if (known !== undefined) return known;
    const counted = (await countTokens(message)) + MESSAGE_OVERHEAD_TOKENS;
    costs.set(message, counted);
    return counted;
  };
  let used = 0;
  for (const message of system) used += await cost(message);
  const lastUser = turns.findLastIndex((message) => message.role === 'user');
  // Where the newest turn starts: nothing from here on is dropped.
  const newest = lastUser === -1 ? turns.length - 1 : lastUser;
  let first = turns.length;
  while (first > 0) {
    const next = await cost(turns[first - 1] as ChatMessage);
    if (first <= newest && used + next > budget) break;
    used += next;
    first -= 1;
  }
  const newestOnly = first === newest;
  if (newestOnly && used > budget * HOPELESS_FACTOR) throw overflow(`about ${used}`, describeRoom);
  for (;;) {
    first = startAtUser(turns, first, newest);
    const rendered = render([...system, ...turns.slice(first)]);
    if (rendered.tokenCount <= budget) return rendered;
    if (first >= newest) throw overflow(String(rendered.tokenCount), describeRoom);
    // Drop the oldest kept turns until their estimated cost covers the excess.
    let excess = rendered.tokenCount - budget;
    while (excess > 0 && first < newest) {
      excess -= await cost(turns[first] as ChatMessage);
      first += 1;
    }
  }
}

/**
 * Counts tokens in slices, yielding to the event loop between them, so that a long message never
 * holds up other clients' frames for more than a slice's tokenization.
 */
export async function countTokensInSlices(text: string, tokenize: (slice: string) => number): Promise<number> {
  let count = 0;
  for (let start = 0; start < text.length; start += COUNT_SLICE_CHARS) {
    if (start > 0) await nextTurn();
    count += tokenize(text.slice(start, start + COUNT_SLICE_CHARS));
  }
  return count;
}

const COUNT_SLICE_CHARS = 4096;

/** A conversation shown to the model starts with a user message (never a dangling answer). */
function startAtUser(turns: readonly ChatMessage[], first: number, newest: number): number {
  let start = first;
  while (start < newest && turns[start]?.role !== 'user') start += 1;
  return start;
}

function overflow(tokens: string, describeRoom: string): ContextOverflowError {
  return new ContextOverflowError(`The newest message needs ${tokens} prompt tokens; ${describeRoom}`);
}
