import type { HistoryMessage, ServerFrame } from '../../protocol/serverFrames.js';
import { WS_PATH } from '../../protocol/version.js';
import { ChatConnection, type ConnectionState } from './ChatConnection.js';
import { ConversationStore, type StoredConversation } from './ConversationStore.js';
import { describeError } from './describeError.js';
import { MessageView } from './MessageView.js';
import { STYLES, TEMPLATE } from './template.js';

type Running = {
  requestId: string;
  genId: string | undefined;
  lastSeq: number;
  view: MessageView;
  sentAt: number;
  firstTokenAt: number | undefined;
};

const STATE_LABELS: Record<ConnectionState, string> = {
  connecting: 'Connecting…',
  open: 'Connected',
  reconnecting: 'Reconnecting…',
};

/**
 * `<llm-chat server="ws://host/v1/ws" seed="42">`: a chat with the server. It keeps this
 * browser's conversations in localStorage, survives a dropped connection (reconnects, reattaches
 * its session and resumes a running answer from its last token), and has a Stop button (or Esc).
 */
export class LlmChatElement extends HTMLElement {
  private readonly root = this.attachShadow({ mode: 'open' });
  private readonly store = new ConversationStore();
  private connection: ChatConnection | undefined;
  private sessionId: string | undefined;
  private running: Running | undefined;
  private requests = 0;
  /** The id of the latest session.open: replies to older ones (a quick switch) are ignored. */
  private openRequest: string | undefined;

  connectedCallback(): void {
    this.root.innerHTML = `<style>${STYLES}</style>${TEMPLATE}`;
    this.wireControls();
    this.renderConversationList();
    this.connection = new ChatConnection(this.serverUrl(), {
      onFrame: (frame) => this.onFrame(frame),
      onState: (state) => this.showState(state),
    });
    this.connection.connect();
  }

  disconnectedCallback(): void {
    this.connection?.close();
  }

  private serverUrl(): string {
    const attribute = this.getAttribute('server');
    if (attribute) return attribute;
    return `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}${WS_PATH}`;
  }

  private onFrame(frame: ServerFrame): void {
    switch (frame.type) {
      case 'welcome':
        this.$('.reasoning-control').hidden = !frame.model.reasoning;
        // The server refuses more than it allows (its setting, capped by the context).
        this.$<HTMLInputElement>('.max-tokens').max = String(frame.limits.maxTokens);
        this.openSession();
        return;
      case 'session.opened':
        this.onSessionOpened(frame.sessionId, frame.resumeToken, frame.resumed, frame.history, frame.id);
        return;
      case 'generation.queued':
        if (this.running?.requestId !== frame.id) return;
        this.running.genId = frame.genId;
        this.status(frame.position > 0 ? `Waiting in line: position ${frame.position}` : 'Starting…');
        return;
      case 'generation.started':
        if (frame.genId === this.running?.genId) this.status('Answering…');
        return;
      case 'token':
        this.onToken(frame.genId, frame.seq, frame.text, frame.channel);
        return;
      case 'generation.done':
        this.onDone(frame);
        return;
      case 'cancel.ack':
        if (frame.genId === this.running?.genId) this.status('Stop acknowledged.');
        return;
      case 'error':
        this.onError(frame);
        return;
      case 'server.notice':
        this.status('The server is restarting; the answer will resume when it is back.');
        return;
      case 'pong':
      case 'rate_limits':
      case 'session.closed':
        return;
      default:
        frame satisfies never;
    }
  }

  /** Reattaches the current conversation (after a reload or a reconnect) or starts one. */
  private openSession(): void {
    const current =
      this.sessionId === undefined
        ? this.store.current()
        : this.store.list().find((c) => c.sessionId === this.sessionId);
    this.requestSession(current);
  }

  private requestSession(conversation: StoredConversation | undefined): void {
    this.openRequest = conversation === undefined ? `new-${++this.requests}` : `reattach-${conversation.sessionId}`;
    if (conversation === undefined) {
      this.connection?.send({ type: 'session.open', id: this.openRequest });
      return;
    }
    const { sessionId, resumeToken } = conversation;
    this.connection?.send({ type: 'session.open', id: this.openRequest, sessionId, resumeToken });
  }

  private onSessionOpened(
    sessionId: string,
    resumeToken: string,
    resumed: boolean,
    history: HistoryMessage[],
    requestId: string,
  ): void {
    if (requestId !== this.openRequest) return;
    const known = this.store.list().find((c) => c.sessionId === sessionId);
    this.store.save({ sessionId, resumeToken, title: known?.title ?? 'New chat', updatedAt: Date.now() });
    const switched = this.sessionId !== sessionId;
    this.sessionId = sessionId;
    this.renderConversationList();
    if (this.running !== undefined && this.running.genId === undefined) {
      // The connection dropped before the server named the answer: it cannot be resumed.
      this.interrupt();
    } else if (this.running?.genId !== undefined && !switched) {
      // Back after a dropped connection: continue the answer from its last token.
      this.connection?.send({
        type: 'generation.resume',
        id: `resume-${++this.requests}`,
        genId: this.running.genId,
        afterSeq: this.running.lastSeq,
      });
    } else if (switched || requestId.startsWith('new-')) {
      this.renderHistory(resumed ? history : []);
    }
    this.sendButton().disabled = this.running !== undefined;
  }

  private onToken(genId: string, seq: number, text: string, channel: 'content' | 'reasoning'): void {
    const running = this.running;
    if (running === undefined || running.genId !== genId || seq <= running.lastSeq) return;
    running.firstTokenAt ??= performance.now();
    running.lastSeq = seq;
    this.stickToBottom(() => running.view.append(text, channel));
  }

  private onDone(frame: Extract<ServerFrame, { type: 'generation.done' }>): void {
    const running = this.running;
    if (running === undefined || running.genId !== frame.genId) return;
    this.running = undefined;
    const now = performance.now();
    const ttft = running.firstTokenAt === undefined ? undefined : running.firstTokenAt - running.sentAt;
    const seconds = running.firstTokenAt === undefined ? 0 : (now - running.firstTokenAt) / 1000;
    const rate = seconds > 0 ? frame.usage.completionTokens / seconds : undefined;
    if (frame.finish === 'cancelled') running.view.note('Stopped.');
    if (frame.finish === 'length') running.view.note('Reached the maximum length.');
    if (frame.error !== undefined) running.view.note(describeError({ ...frame.error }));
    const parts = [ttft === undefined ? 'No tokens' : `First token after ${Math.round(ttft)} ms`];
    if (rate !== undefined) parts.push(`${rate.toFixed(0)} tokens/s`);
    this.status(`${parts.join(' · ')} · ${frame.usage.completionTokens} tokens`);
    this.setBusy(false);
  }

  private onError(frame: Extract<ServerFrame, { type: 'error' }>): void {
    if (frame.id?.startsWith('reattach-')) {
      // The conversation expired on the server (or the server restarted): start a new one.
      this.interrupt();
      this.store.forget(frame.id.slice('reattach-'.length));
      this.sessionId = undefined;
      this.store.clearCurrent();
      this.requestSession(undefined);
      return;
    }
    if (this.running !== undefined && (frame.id === this.running.requestId || frame.genId === this.running.genId)) {
      this.running.view.note(describeError(frame));
      this.running = undefined;
      this.setBusy(false);
    }
    this.status(describeError(frame), true);
  }

  /** Gives up on the running answer, leaving a note, so the widget is usable again. */
  private interrupt(): void {
    if (this.running === undefined) return;
    this.running.view.note('The answer was interrupted.');
    this.running = undefined;
    this.setBusy(false);
  }

  private send(): void {
    const input = this.$<HTMLTextAreaElement>('textarea');
    const content = input.value.trim();
    if (content === '' || this.sessionId === undefined || this.running !== undefined) return;
    const requestId = `chat-${++this.requests}`;
    const params = this.params();
    if (!this.connection?.send({ type: 'chat.send', id: requestId, sessionId: this.sessionId, content, params })) {
      this.status('Not connected yet; your message is still in the box.', true);
      return;
    }
    input.value = '';
    this.titleConversation(content);
    const log = this.$('.log');
    this.stickToBottom(() => new MessageView(log, 'user', content));
    const view = this.stickToBottom(() => new MessageView(log, 'assistant'));
    this.running = {
      requestId,
      genId: undefined,
      lastSeq: 0,
      view,
      sentAt: performance.now(),
      firstTokenAt: undefined,
    };
    this.setBusy(true);
    this.status('Sending…');
  }

  private stop(): void {
    const genId = this.running?.genId;
    if (genId === undefined) return;
    this.connection?.send({ type: 'generation.cancel', id: `stop-${++this.requests}`, genId });
    this.status('Stopping…');
  }

  private params() {
    const number = (selector: string) => Number(this.$<HTMLInputElement>(selector).value);
    const seed = this.getAttribute('seed');
    const reasoning = this.$('.reasoning-control').hidden
      ? {}
      : { reasoning: this.$<HTMLSelectElement>('.reasoning').value as 'low' | 'medium' | 'high' };
    return {
      temperature: Math.min(2, Math.max(0, number('.temperature'))),
      maxTokens: Math.min(
        Number(this.$<HTMLInputElement>('.max-tokens').max || Number.POSITIVE_INFINITY),
        Math.max(1, Math.round(number('.max-tokens'))),
      ),
      ...(seed === null ? {} : { seed: Number(seed) }),
      ...reasoning,
    };
  }

  private wireControls(): void {
    const input = this.$<HTMLTextAreaElement>('textarea');
    this.$('form').addEventListener('submit', (event) => {
      event.preventDefault();
      this.send();
    });
    input.addEventListener('keydown', (event) => {
      if (event.key === 'Enter' && !event.shiftKey) {
        event.preventDefault();
        this.send();
      }
    });
    this.root.addEventListener('keydown', (event) => {
      if ((event as KeyboardEvent).key === 'Escape') this.stop();
    });
    this.$('.stop').addEventListener('click', () => this.stop());
    this.$('.new').addEventListener('click', () => {
      if (this.running !== undefined) return;
      this.sessionId = undefined;
      this.store.clearCurrent();
      this.setBusy(false);
      this.requestSession(undefined);
    });
    this.$<HTMLSelectElement>('.conversations').addEventListener('change', (event) => {
      const chosen = this.store.list().find((c) => c.sessionId === (event.target as HTMLSelectElement).value);
      if (chosen === undefined || this.running !== undefined) return;
      this.requestSession(chosen);
    });
  }

  private renderHistory(history: HistoryMessage[]): void {
    const log = this.$('.log');
    log.replaceChildren();
    for (const message of history) {
      if (message.role !== 'system') new MessageView(log, message.role, message.content);
    }
    log.scrollTop = log.scrollHeight;
  }

  private renderConversationList(): void {
    const select = this.$<HTMLSelectElement>('.conversations');
    select.replaceChildren(
      ...this.store.list().map((conversation) => {
        const option = document.createElement('option');
        option.value = conversation.sessionId;
        option.textContent = conversation.title;
        option.selected = conversation.sessionId === this.sessionId;
        return option;
      }),
    );
  }

  private titleConversation(firstMessage: string): void {
    const current = this.store.current();
    if (current === undefined || current.title !== 'New chat') return;
    this.store.save({ ...current, title: firstMessage.slice(0, 40), updatedAt: Date.now() });
    this.renderConversationList();
  }

  /** Keeps the newest line in view, unless the reader scrolled up. */
  private stickToBottom<T>(change: () => T): T {
    const log = this.$('.log');
    const atBottom = log.scrollTop + log.clientHeight >= log.scrollHeight - 24;
    const result = change();
    if (atBottom) log.scrollTop = log.scrollHeight;
    return result;
  }

  private setBusy(busy: boolean): void {
    this.sendButton().disabled = busy || this.sessionId === undefined;
    this.$<HTMLButtonElement>('.stop').disabled = !busy;
  }

  private sendButton(): HTMLButtonElement {
    return this.$<HTMLButtonElement>('.send');
  }

  private showState(state: ConnectionState): void {
    const label = this.$('.state');
    label.dataset.state = state;
    label.textContent = STATE_LABELS[state];
    if (state !== 'open') this.sendButton().disabled = true;
  }

  private status(text: string, isError = false): void {
    const status = this.$('.status');
    status.textContent = text;
    status.classList.toggle('error', isError);
  }

  private $<T extends HTMLElement = HTMLElement>(selector: string): T {
    return this.root.querySelector(selector) as T;
  }
}
