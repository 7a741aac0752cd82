import type { Welcome } from '../../protocol/serverFrames.js';
import type { Problem } from './connection/Problem.js';
import type { WidgetState } from './connection/WidgetConnection.js';
import { describeModel } from './describeModel.js';

const STATE_LABELS: Record<WidgetState, string> = {
  connecting: 'Connecting…',
  open: 'Connected',
  reconnecting: 'Reconnecting…',
  refused: 'Not connected',
};

/** The header (the model's name and a line on it, the connection's state) and the banner saying why it is not connected. */
export class ConnectionView {
  private modelKnown = false;

  constructor(
    private readonly root: ShadowRoot,
    onRetry: () => void,
  ) {
    this.$('.retry').addEventListener('click', onRetry);
  }

  show(state: WidgetState, problem: Problem | undefined): void {
    const label = this.$('.state');
    label.dataset.state = state;
    label.textContent = STATE_LABELS[state];
    const banner = this.$('.problem');
    banner.hidden = problem === undefined;
    banner.dataset.final = String(problem?.final ?? false);
    this.$('.problem-text').textContent = problem?.text ?? '';
    this.$('.retry').hidden = !problem?.final;
    if (state === 'refused' && !this.modelKnown) this.$('.model-line').textContent = 'Not connected';
  }

  /** The model's name, and the page's `description` of it or else what `welcome` tells (context, answer length). */
  showModel(welcome: Welcome, description: string | null): void {
    this.modelKnown = true;
    const facts = describeModel(welcome);
    this.$('.model-name').textContent = welcome.model.name;
    const line = this.$('.model-line');
    line.textContent = description ?? facts;
    line.title = facts;
    this.$('.chat').setAttribute('aria-label', `Chat with ${welcome.model.name}`);
  }

  private $(selector: string): HTMLElement {
    return this.root.querySelector(selector) as HTMLElement;
  }
}
