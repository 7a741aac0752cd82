import type { FinishReason, Welcome } from '../../protocol/serverFrames.js';

/** One line on the model from `welcome`: what a person should know before asking it anything. */
export function describeModel({ model, limits }: Welcome): string {
  const parts = [
    `${model.contextSize.toLocaleString('en')}-token context`,
    `answers up to ${limits.maxTokens.toLocaleString('en')} tokens`,
  ];
  if (model.reasoning) parts.push('reasoning levels');
  return parts.join(' · ');
}

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
