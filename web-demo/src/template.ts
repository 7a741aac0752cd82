export const STYLES = `
:host { display: block; font: 15px/1.45 system-ui, sans-serif; color: #1d2330; }
.chat { display: flex; flex-direction: column; height: 100%; min-height: 320px; border: 1px solid #d6dae3; border-radius: 10px; overflow: hidden; background: #fff; }
header { display: flex; gap: 8px; align-items: center; padding: 8px 12px; border-bottom: 1px solid #e6e9ef; background: #f7f8fb; }
.state { font-size: 13px; padding: 2px 8px; border-radius: 99px; background: #e6e9ef; }
.state[data-state="open"] { background: #d9f2e3; color: #145c32; }
.state[data-state="reconnecting"], .state[data-state="connecting"] { background: #fff1cc; color: #6b4e00; }
header .spacer { flex: 1; }
.log { flex: 1; overflow-y: auto; padding: 12px; display: flex; flex-direction: column; gap: 10px; }
.msg { max-width: 85%; padding: 8px 12px; border-radius: 10px; white-space: pre-wrap; overflow-wrap: anywhere; }
.msg.user { align-self: flex-end; background: #2d5bd7; color: #fff; }
.msg.assistant { align-self: flex-start; background: #f0f2f6; }
.msg .note { display: block; margin-top: 4px; font-size: 12px; color: #5b6475; }
details.reasoning { margin-bottom: 6px; font-size: 13px; color: #5b6475; }
.status { min-height: 1.4em; padding: 4px 12px; font-size: 13px; color: #5b6475; border-top: 1px solid #e6e9ef; }
.status.error { color: #a32020; }
form { display: flex; flex-direction: column; gap: 6px; padding: 8px 12px 12px; }
textarea { resize: vertical; min-height: 2.6em; font: inherit; padding: 6px 8px; border: 1px solid #c4c9d4; border-radius: 8px; }
.controls { display: flex; flex-wrap: wrap; gap: 10px; align-items: center; font-size: 13px; }
.controls input { width: 5.5em; }
.controls .spacer { flex: 1; }
button { font: inherit; padding: 4px 12px; border-radius: 8px; border: 1px solid #c4c9d4; background: #fff; cursor: pointer; }
button[type="submit"] { background: #2d5bd7; color: #fff; border-color: #2d5bd7; }
button:disabled { opacity: 0.5; cursor: default; }
:focus-visible { outline: 2px solid #2d5bd7; outline-offset: 2px; }
`;

export const TEMPLATE = `
<div class="chat" role="region" aria-label="Chat">
  <header>
    <span class="state" role="status" data-state="connecting">Connecting…</span>
    <span class="spacer"></span>
    <label>Conversation <select class="conversations" aria-label="Conversations"></select></label>
    <button type="button" class="new">New chat</button>
  </header>
  <div class="log" role="log" aria-live="polite" aria-label="Messages" tabindex="0"></div>
  <div class="status" aria-live="polite"></div>
  <form>
    <textarea aria-label="Message" placeholder="Type a message; Enter sends, Shift+Enter for a new line" rows="2"></textarea>
    <div class="controls">
      <label>Temperature <input class="temperature" type="number" min="0" max="2" step="0.1" value="0.8"></label>
      <label>Max tokens <input class="max-tokens" type="number" min="1" step="1" value="256"></label>
      <label class="reasoning-control" hidden>Reasoning
        <select class="reasoning"><option value="low">low</option><option value="medium" selected>medium</option><option value="high">high</option></select>
      </label>
      <span class="spacer"></span>
      <button type="button" class="stop" disabled>Stop</button>
      <button type="submit" class="send" disabled>Send</button>
    </div>
  </form>
</div>
`;
