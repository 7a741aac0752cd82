import type { FinishReason, GenerationDone } from '../../protocol/serverFrames.js';

/** How an answer that did not simply stop ended, said under it (live and in restored history alike). */
export function describeFinish(finish: FinishReason): string | undefined {
  const notes: Partial<Record<FinishReason, string>> = {
    cancelled: 'Stopped.',
    length: 'Reached the maximum length.',
    timeout: 'Took too long and was stopped.',
    error: 'Failed.',
    interrupted: 'Interrupted: the server stopped before this answer finished. Send your message again to go on.',
  };
  return notes[finish];
}

/** When an answer was sent, when its first token came, and whether it was picked up after a reload. */
export type AnswerTimes = { sentAt: number; firstTokenAt: number | undefined; reattached: boolean };

/** The status line after an answer: time to first token, tokens per second, tokens. */
export function answerStats({ sentAt, firstTokenAt, reattached }: AnswerTimes, done: GenerationDone, now: number) {
  const tokens = `${done.usage.completionTokens} tokens`;
  if (reattached) return `Picked up after the page was left · ${tokens}`;
  if (firstTokenAt === undefined) return `No tokens · ${tokens}`;
  const seconds = (now - firstTokenAt) / 1000;
  const rate = seconds > 0 ? ` · ${(done.usage.completionTokens / seconds).toFixed(0)} tokens/s` : '';
  return `First token after ${Math.round(firstTokenAt - sentAt)} ms${rate} · ${tokens}`;
}
