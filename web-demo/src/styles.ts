/**
 * The widget's look. Every colour, the font and the radius are custom properties an embedding
 * page may set on `llm-chat` (`--llm-chat-accent: #0a7`); each default has a light and a dark
 * value, chosen by `prefers-color-scheme` (or the `theme` attribute). Text colours keep a
 * contrast of at least 4.5:1 on their backgrounds in both (axe checks it in the browser tests).
 */
const THEME = `
:host {
  color-scheme: light dark;
  --_font: var(--llm-chat-font, 15px/1.5 system-ui, sans-serif);
  --_radius: var(--llm-chat-radius, 10px);
  --_bg: var(--llm-chat-bg, light-dark(#ffffff, #16181d));
  --_fg: var(--llm-chat-fg, light-dark(#1d2330, #e6e8ee));
  --_muted: var(--llm-chat-muted, light-dark(#4f5869, #a9b1c0));
  --_border: var(--llm-chat-border, light-dark(#d6dae3, #353b47));
  --_bar: var(--llm-chat-bar-bg, light-dark(#f5f6f9, #1d2027));
  --_accent: var(--llm-chat-accent, light-dark(#2d5bd7, #8cadff));
  --_accent-fg: var(--llm-chat-accent-fg, light-dark(#ffffff, #0c1222));
  --_user-bg: var(--llm-chat-user-bg, light-dark(#2d5bd7, #3457c0));
  --_user-fg: var(--llm-chat-user-fg, #ffffff);
  --_answer-bg: var(--llm-chat-assistant-bg, light-dark(#eef0f5, #242832));
  --_link: var(--llm-chat-link, light-dark(#1f4cc2, #9dbaff));
  --_code-bg: var(--llm-chat-code-bg, light-dark(#f8f9fb, #101217));
  --_error: var(--llm-chat-error, light-dark(#a32020, #ff9c9c));
  --_ok-bg: light-dark(#d9f2e3, #173b27);
  --_ok-fg: light-dark(#145c32, #a6e9c0);
  --_wait-bg: light-dark(#fff1cc, #3d3210);
  --_wait-fg: light-dark(#6b4e00, #f5d77a);
  --_bad-bg: light-dark(#fde4e4, #4a1d1d);
  --_bad-fg: light-dark(#8a1c1c, #ffc2c2);
}
:host([theme="light"]) { color-scheme: light; }
:host([theme="dark"]) { color-scheme: dark; }
`;

const LAYOUT = `
:host { display: block; font: var(--_font); color: var(--_fg); min-width: 0; }
* { box-sizing: border-box; }
[hidden] { display: none !important; }
.sr-only { position: absolute; width: 1px; height: 1px; overflow: hidden; clip-path: inset(50%); white-space: nowrap; }
.chat { container-type: inline-size; display: flex; flex-direction: column; height: 100%; min-height: 320px; border: 1px solid var(--_border); border-radius: var(--_radius); overflow: hidden; background: var(--_bg); }
header { display: flex; flex-wrap: wrap; gap: 6px 10px; align-items: center; padding: 8px 12px; border-bottom: 1px solid var(--_border); background: var(--_bar); }
.model { flex: 1 1 14em; min-width: 0; display: flex; flex-direction: column; }
.model-name { font-weight: 600; overflow: hidden; text-overflow: ellipsis; white-space: nowrap; }
.model-line { font-size: 12.5px; color: var(--_muted); overflow: hidden; text-overflow: ellipsis; white-space: nowrap; }
.bar { display: flex; gap: 8px; align-items: center; flex: 1 1 auto; min-width: 0; justify-content: flex-end; }
.state { flex: none; font-size: 12.5px; padding: 2px 8px; border-radius: 99px; background: var(--_wait-bg); color: var(--_wait-fg); white-space: nowrap; }
.state[data-state="open"] { background: var(--_ok-bg); color: var(--_ok-fg); }
.state[data-state="refused"] { background: var(--_bad-bg); color: var(--_bad-fg); }
.conversations { flex: 0 1 13em; min-width: 4em; max-width: 13em; }
.new { flex: none; }
.problem { display: flex; flex-wrap: wrap; gap: 6px 12px; align-items: center; padding: 8px 12px; background: var(--_bad-bg); color: var(--_bad-fg); font-size: 13.5px; }
.problem[data-final="false"] { background: var(--_wait-bg); color: var(--_wait-fg); }
.problem p { margin: 0; flex: 1 1 16em; overflow-wrap: anywhere; }
.log { flex: 1; min-height: 0; overflow-y: auto; padding: 12px; display: flex; flex-direction: column; gap: 10px; }
.msg { max-width: 85%; min-width: 0; padding: 8px 12px; border-radius: var(--_radius); overflow-wrap: anywhere; }
.msg.user { align-self: flex-end; background: var(--_user-bg); color: var(--_user-fg); white-space: pre-wrap; }
.msg.assistant { align-self: flex-start; background: var(--_answer-bg); }
.msg .note { display: block; margin-top: 4px; font-size: 12.5px; color: var(--_muted); }
details.reasoning { margin-bottom: 6px; font-size: 13px; color: var(--_muted); white-space: pre-wrap; }
.status { min-height: 1.5em; padding: 4px 12px; font-size: 13px; color: var(--_muted); border-top: 1px solid var(--_border); overflow-wrap: anywhere; }
.status.error { color: var(--_error); }
form { display: flex; flex-direction: column; gap: 6px; padding: 8px 12px 12px; }
textarea { resize: vertical; min-height: 2.8em; width: 100%; font: inherit; color: inherit; background: var(--_bg); padding: 6px 8px; border: 1px solid var(--_border); border-radius: 8px; }
.controls { display: flex; flex-wrap: wrap; gap: 8px; align-items: center; font-size: 13.5px; }
.controls .spacer { flex: 1; }
.settings { flex: 1 1 auto; min-width: 0; }
.settings summary { cursor: pointer; color: var(--_muted); width: fit-content; }
.settings-body { display: flex; flex-wrap: wrap; gap: 6px 14px; padding-top: 6px; }
.settings input { width: 5.5em; }
.hint { color: var(--_muted); font-size: 12.5px; }
input, select { font: inherit; color: inherit; background: var(--_bg); border: 1px solid var(--_border); border-radius: 6px; padding: 2px 6px; }
button { font: inherit; color: var(--_fg); padding: 4px 12px; border-radius: 8px; border: 1px solid var(--_border); background: var(--_bg); cursor: pointer; }
button.send, .problem button { background: var(--_accent); color: var(--_accent-fg); border-color: var(--_accent); }
button:disabled { opacity: 0.5; cursor: default; }
:focus-visible { outline: 2px solid var(--_accent); outline-offset: 2px; }
@container (max-width: 420px) {
  header, .log, form, .status, .problem { padding-inline: 8px; }
  .msg { max-width: 94%; }
  .model { flex-basis: 100%; }
  .bar { justify-content: flex-start; }
  .conversations { flex: 1 1 4em; max-width: none; }
}
`;

/** Rendered Markdown inside an answer. */
const MARKDOWN = `
.md > :first-child, .md-live > :first-child { margin-top: 0; }
.md > :last-child, .md-live > :last-child { margin-bottom: 0; }
.md-live { display: contents; }
.md p, .md ul, .md ol, .md blockquote, .md .code-block, .md .table-scroll, .md h1, .md h2, .md h3, .md h4, .md h5, .md h6 { margin: 0.5em 0; }
.md h1, .md h2, .md h3, .md h4, .md h5, .md h6 { font-size: 1em; font-weight: 650; }
.md h1 { font-size: 1.2em; } .md h2 { font-size: 1.1em; }
.md ul, .md ol { padding-inline-start: 1.4em; }
.md a { color: var(--_link); }
.md blockquote { padding-inline-start: 0.8em; border-inline-start: 3px solid var(--_border); color: var(--_muted); }
.md code { font: 0.92em/1.45 ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; background: var(--_code-bg); padding: 0.05em 0.3em; border-radius: 4px; }
.md .code-block { border: 1px solid var(--_border); border-radius: 8px; background: var(--_code-bg); overflow: hidden; }
.md .code-bar { display: flex; justify-content: space-between; align-items: center; padding: 2px 4px 2px 10px; font-size: 12px; color: var(--_muted); border-bottom: 1px solid var(--_border); }
.md .copy { font-size: 12px; padding: 1px 8px; }
.md pre { margin: 0; padding: 8px 10px; overflow-x: auto; }
.md pre code { background: none; padding: 0; white-space: pre; }
.md .table-scroll { overflow-x: auto; }
.md table { border-collapse: collapse; }
.md th, .md td { border: 1px solid var(--_border); padding: 3px 8px; text-align: start; }
.md hr { border: 0; border-top: 1px solid var(--_border); }
`;

export const STYLES = THEME + LAYOUT + MARKDOWN;
