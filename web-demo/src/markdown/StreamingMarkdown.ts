import { lexBlocks, renderBlocks } from './renderMarkdown.js';

/**
 * An answer's Markdown, rendered while it streams without re-rendering what is finished. The
 * text not yet settled is lexed into blocks; every block but the last is final (a later token can
 * only extend or change the last one), so it is rendered once, appended before the live block and
 * never touched again. Only the last block is rendered anew, at most once per `schedule` (an
 * animation frame). Lexing starts where the settled blocks end, so the work per frame is the size
 * of the last block, not of the answer.
 */
export class StreamingMarkdown {
  readonly element = document.createElement('div');
  private readonly live = document.createElement('div');
  private source = '';
  /** Characters of `source` rendered as finished blocks. */
  private settled = 0;
  private scheduled = false;
  private finished = false;
  /** A link reference definition was seen: uses before it are only resolved by a full render. */
  private definitions = false;

  constructor(private readonly schedule: (render: () => void) => void) {
    this.element.className = 'md';
    this.live.className = 'md-live';
    this.element.append(this.live);
  }

  get text(): string {
    return this.source;
  }

  append(text: string): void {
    this.source += text.replace(/\r\n?/g, '\n');
    if (this.scheduled || this.finished) return;
    this.scheduled = true;
    this.schedule(() => {
      this.scheduled = false;
      if (!this.finished) this.render(false);
    });
  }

  /** The answer ended: its last block is final too. */
  finish(): void {
    if (this.finished) return;
    this.finished = true;
    if (this.definitions) {
      this.element.replaceChildren(this.live);
      this.settled = 0;
    }
    this.render(true);
  }

  private render(final: boolean): void {
    const tokens = lexBlocks(this.source.slice(this.settled));
    this.definitions ||= tokens.some((token) => token.type === 'def');
    let open = tokens.length;
    if (!final) while (open > 0 && tokens[open - 1]?.type === 'space') open--;
    if (!final && open > 0) open--;
    for (const token of tokens.slice(0, open)) {
      this.settled += token.raw.length;
      if (token.type !== 'space') this.live.before(renderBlocks([token]));
    }
    this.live.replaceChildren(renderBlocks(tokens.slice(open)));
  }
}
