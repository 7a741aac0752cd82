import { copyCode } from './markdown/renderMarkdown.js';
import { StreamingMarkdown } from './markdown/StreamingMarkdown.js';

/**
 * One message in the log. A person's message is plain text; an answer is Markdown rendered as it
 * streams (see StreamingMarkdown), with the model's reasoning apart in a collapsed block.
 */
export class MessageView {
  readonly element: HTMLElement;
  private readonly body: StreamingMarkdown | Text;
  private reasoning: Text | undefined;

  constructor(
    parent: HTMLElement,
    readonly role: 'user' | 'assistant',
    /** Runs a render of the streaming answer (the element keeps the log scrolled to the newest line). */
    schedule: (render: () => void) => void = (render) => render(),
  ) {
    this.element = document.createElement('div');
    this.element.className = `msg ${role}`;
    this.element.setAttribute('role', 'article');
    this.element.setAttribute('aria-label', role === 'user' ? 'You' : 'Assistant');
    if (role === 'user') {
      this.body = document.createTextNode('');
      this.element.append(this.body);
    } else {
      this.body = new StreamingMarkdown(schedule);
      this.element.append(this.body.element);
      this.element.addEventListener('click', (event) => {
        const button = (event.target as Element).closest('button.copy');
        if (button instanceof HTMLButtonElement) void copyCode(button);
      });
    }
    parent.append(this.element);
  }

  /** A message already complete (history, or the person's own). */
  static complete(parent: HTMLElement, role: 'user' | 'assistant', text: string): MessageView {
    const view = new MessageView(parent, role);
    view.append(text, 'content');
    view.finish();
    return view;
  }

  append(text: string, channel: 'content' | 'reasoning'): void {
    if (channel === 'reasoning') this.reasoningNode().data += text;
    else if (this.body instanceof Text) this.body.data += text;
    else this.body.append(text);
  }

  /** While an answer streams, screen readers wait for it (aria-busy) rather than reading every change. */
  set streaming(streaming: boolean) {
    this.element.setAttribute('aria-busy', String(streaming));
  }

  /** The answer ended: its last block is rendered as final. */
  finish(): void {
    if (!(this.body instanceof Text)) this.body.finish();
    this.streaming = false;
  }

  get text(): string {
    return this.body instanceof Text ? this.body.data : this.body.text;
  }

  get hasText(): boolean {
    return this.text !== '' || (this.reasoning?.data ?? '') !== '';
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
