/** One message in the log: text appended in place (no re-render, so no flicker). */
export class MessageView {
  readonly element: HTMLElement;
  private readonly content: Text;
  private reasoning: Text | undefined;

  constructor(
    parent: HTMLElement,
    readonly role: 'user' | 'assistant',
    text = '',
  ) {
    this.element = document.createElement('div');
    this.element.className = `msg ${role}`;
    this.element.setAttribute('aria-label', role === 'user' ? 'You' : 'Assistant');
    this.content = document.createTextNode(text);
    this.element.append(this.content);
    parent.append(this.element);
  }

  append(text: string, channel: 'content' | 'reasoning'): void {
    if (channel === 'content') this.content.data += text;
    else this.reasoningNode().data += text;
  }

  get text(): string {
    return this.content.data;
  }

  note(text: string): void {
    const note = document.createElement('span');
    note.className = 'note';
    note.textContent = text;
    this.element.append(note);
  }

  /** Thoughts go in a collapsed block above the answer. */
  private reasoningNode(): Text {
    if (this.reasoning !== undefined) return this.reasoning;
    const details = document.createElement('details');
    details.className = 'reasoning';
    const summary = document.createElement('summary');
    summary.textContent = 'Reasoning';
    const body = document.createElement('div');
    this.reasoning = document.createTextNode('');
    body.append(this.reasoning);
    details.append(summary, body);
    this.element.prepend(details);
    return this.reasoning;
  }
}
