import type { GenerationParams } from '../../protocol/clientFrames.js';
import type { Welcome } from '../../protocol/serverFrames.js';

/** The sampling settings under the message box, bounded by what the server's `welcome` allows. */
export class Settings {
  constructor(private readonly root: ShadowRoot) {
    for (const input of [this.input('.temperature'), this.input('.max-tokens')])
      input.addEventListener('change', () => clampInput(input));
  }

  /** Max tokens capped by the server (its setting, capped by the context); reasoning levels when the model takes them. */
  apply({ model, limits }: Welcome): void {
    const maxTokens = this.input('.max-tokens');
    maxTokens.max = String(limits.maxTokens);
    clampInput(maxTokens);
    this.element('#max-tokens-hint').textContent = `at most ${limits.maxTokens.toLocaleString('en')}`;
    this.element('.reasoning-control').hidden = !model.reasoning;
  }

  /** The request's params; `seed` from the element's attribute fixes sampling. */
  params(seed: string | null): GenerationParams {
    const reasoning = this.element('.reasoning-control').hidden
      ? {}
      : { reasoning: (this.root.querySelector('.reasoning') as HTMLSelectElement).value as 'low' | 'medium' | 'high' };
    return {
      temperature: clampInput(this.input('.temperature')),
      maxTokens: clampInput(this.input('.max-tokens')),
      ...(seed === null ? {} : { seed: Number(seed) }),
      ...reasoning,
    };
  }

  private input(selector: string): HTMLInputElement {
    return this.root.querySelector(selector) as HTMLInputElement;
  }

  private element(selector: string): HTMLElement {
    return this.root.querySelector(selector) as HTMLElement;
  }
}

/** Brings a number input within its min and max (typing can go past them) and returns its value. */
function clampInput(input: HTMLInputElement): number {
  const min = Number(input.min || Number.NEGATIVE_INFINITY);
  const max = Number(input.max || Number.POSITIVE_INFINITY);
  const raw = Number(input.value);
  const value = Math.min(max, Math.max(min, Number.isFinite(raw) ? raw : min));
  const stepped = input.step === '1' ? Math.round(value) : value;
  if (String(stepped) !== input.value) input.value = String(stepped);
  return stepped;
}
