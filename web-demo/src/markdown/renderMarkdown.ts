import createDOMPurify, { type Config } from 'dompurify';
import { Marked, type Token } from 'marked';

/**
 * Markdown as a chat shows it: GitHub's flavour, a line break where the model put one, and raw
 * HTML shown as text (a model writing about `<div>` means the text). Images become links: an
 * answer must not make the browser fetch addresses a prompt could have put there.
 */
const markdown = new Marked({
  gfm: true,
  breaks: true,
  renderer: {
    html: ({ text }) => escapeHtml(text),
    image: ({ href, text }) => `<a href="${escapeHtml(href)}">${escapeHtml(text || href)}</a>`,
  },
});

/** Our own DOMPurify, so that its hook is not shared with the embedding page's copy. */
const purify = createDOMPurify(window);
purify.addHook('afterSanitizeAttributes', (node) => {
  if (node.tagName !== 'A') return;
  node.setAttribute('target', '_blank');
  node.setAttribute('rel', 'noopener noreferrer');
});

const SANITIZE: Config & { RETURN_DOM_FRAGMENT: true } = {
  RETURN_DOM_FRAGMENT: true,
  FORBID_TAGS: ['style', 'img', 'svg', 'math', 'form', 'input', 'button', 'textarea', 'select', 'iframe'],
  ADD_ATTR: ['target'],
};

/** Splits Markdown into block tokens; their `raw` texts put together give the source back. */
export function lexBlocks(source: string): Token[] {
  return markdown.lexer(source);
}

/** Block tokens as sanitised DOM: links open in a new tab without a referrer, code blocks get a copy button. */
export function renderBlocks(tokens: Token[]): DocumentFragment {
  const fragment = purify.sanitize(markdown.parser(tokens), SANITIZE);
  for (const pre of fragment.querySelectorAll('pre')) wrapCodeBlock(pre);
  for (const table of fragment.querySelectorAll('table')) wrap(table, 'table-scroll');
  return fragment;
}

/** A code block with its language and a Copy button (the click is handled by the message, see copyCode). */
function wrapCodeBlock(pre: HTMLPreElement): void {
  const block = wrap(pre, 'code-block');
  const bar = document.createElement('div');
  bar.className = 'code-bar';
  const language = document.createElement('span');
  language.className = 'code-language';
  language.textContent = /language-(\S+)/.exec(pre.querySelector('code')?.className ?? '')?.[1] ?? 'code';
  const copy = document.createElement('button');
  copy.type = 'button';
  copy.className = 'copy';
  copy.textContent = 'Copy';
  copy.setAttribute('aria-label', 'Copy code');
  bar.append(language, copy);
  block.prepend(bar);
}

function wrap(element: Element, className: string): HTMLElement {
  const wrapper = document.createElement('div');
  wrapper.className = className;
  element.replaceWith(wrapper);
  wrapper.append(element);
  return wrapper;
}

/** Copies the code of the block whose Copy button was pressed, and says so on the button. */
export async function copyCode(button: HTMLButtonElement): Promise<void> {
  const code = button.closest('.code-block')?.querySelector('code')?.textContent ?? '';
  try {
    await navigator.clipboard.writeText(code);
    button.textContent = 'Copied';
  } catch {
    // No clipboard (a page over plain HTTP, or permission refused): select the code instead.
    const selection = getSelection();
    const target = button.closest('.code-block')?.querySelector('code');
    if (selection !== null && target) selection.selectAllChildren(target);
    button.textContent = 'Selected: press Ctrl+C';
  }
  setTimeout(() => {
    button.textContent = 'Copy';
  }, 2000);
}

function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (char) => `&#${char.charCodeAt(0)};`);
}
