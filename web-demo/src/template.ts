export { STYLES } from './styles.js';

export const TEMPLATE = `
<div class="chat" role="region" aria-label="Chat">
  <header>
    <div class="model">
      <span class="model-name">Chat</span>
      <span class="model-line">Connecting to the model…</span>
    </div>
    <div class="bar">
      <span class="state" role="status" data-state="connecting">Connecting…</span>
      <select class="conversations" aria-label="Conversation"></select>
      <button type="button" class="new">New chat</button>
    </div>
  </header>
  <div class="problem" role="alert" hidden>
    <p class="problem-text"></p>
    <button type="button" class="retry" hidden>Try again</button>
  </div>
  <div class="log" role="log" aria-live="polite" aria-label="Messages" tabindex="0"></div>
  <div class="status" aria-live="polite"></div>
  <form>
    <textarea aria-label="Message" placeholder="Type a message; Enter sends, Shift+Enter for a new line" rows="2"></textarea>
    <div class="controls">
      <details class="settings">
        <summary>Settings</summary>
        <div class="settings-body">
          <label>Temperature <input class="temperature" type="number" min="0" max="2" step="0.1" value="0.8"></label>
          <label>Max tokens <input class="max-tokens" type="number" min="1" step="1" value="256" aria-describedby="max-tokens-hint">
            <span class="hint" id="max-tokens-hint"></span></label>
          <label class="reasoning-control" hidden>Reasoning
            <select class="reasoning"><option value="low">low</option><option value="medium" selected>medium</option><option value="high">high</option></select>
          </label>
        </div>
      </details>
      <button type="button" class="stop" disabled>Stop</button>
      <button type="submit" class="send" disabled>Send</button>
    </div>
  </form>
</div>
`;
