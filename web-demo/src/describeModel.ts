import type { Welcome } from '../../protocol/serverFrames.js';

/** One line on the model from `welcome`: what a person should know before asking it anything. */
export function describeModel({ model, limits }: Welcome): string {
  const parts = [
    `${model.contextSize.toLocaleString('en')}-token context`,
    `answers up to ${limits.maxTokens.toLocaleString('en')} tokens`,
  ];
  if (model.reasoning) parts.push('reasoning levels');
  return parts.join(' · ');
}
