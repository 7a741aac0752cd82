import type { ClientError } from '../../client/ClientError.js';
import type { ClientGeneration } from '../../client/ClientGeneration.js';
import { ReconnectingClient } from '../../client/ReconnectingClient.js';
import type {
  FinishReason,
  GenerationDone,
  HistoryMessage,
  ServerFrame,
  Welcome,
} from '../../protocol/serverFrames.js';
import { WS_PATH } from '../../protocol/version.js';
import { ConversationStore, type StoredConversation } from './ConversationStore.js';
import { describeError } from './describeError.js';
import { MessageView } from './MessageView.js';
import { STYLES, TEMPLATE } from './template.js';

type ConnectionState = 'connecting' | 'open' | 'reconnecting';

type Running = {
  generation: ClientGeneration;
  view: MessageView;
  sentAt: number;
  firstTokenAt: number | undefined;
};

const STATE_LABELS: Record<ConnectionState, string> = {
  connecting: 'Connecting…',
  open: 'Connected',
  reconnecting: 'Reconnecting…',
};

const FIRST_RETRY_MS = 250;
const MAX_RETRY_MS = 5000;

/**
 * `<llm-chat server="ws://host/v1/ws" seed="42">`: a chat with the server, through the project's
 * client. It keeps this browser's conversations in localStorage, survives a dropped connection
 * (the client reconnects, reattaches the session and resumes a running answer from its last
 * token), and has a Stop button (or Esc).
 */
export class LlmChatElement extends HTMLElement {
  private readonly root = this.attachShadow({ mode: 'open' });
  private readonly store = new ConversationStore();
  private client: ReconnectingClient | undefined;
  private sessionId: string | undefined;
  private running: Running | undefined;
  /** Counts conversation switches: a reply to an older one (a quick switch) is ignored. */
  private opening = 0;
  private removed = false;

  connectedCallback(): void {
    this.root.innerHTML = `<style>${STYLES}</style>${TEMPLATE}`;
    this.wireControls();
    this.renderConversationList();
    void this.start();
  }

  disconnectedCallback(): void {
    this.removed = true;
    void this.client?.close();
  }

  private serverUrl(): string {
    const attribute = this.getAttribute('server');
    if (attribute) return attribute;
    return `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}${WS_PATH}`;
  }

  /** Connects (retrying with growing, jittered waits until the server answers), then opens the conversation. */
  private async start(): Promise<void> {
    this.showState('connecting');
    for (let attempt = 0; this.client === undefined && !this.removed; attempt++) {
      this.client = await ReconnectingClient.connect(this.serverUrl(), {
        initialDelayMs: FIRST_RETRY_MS,
        maxDelayMs: MAX_RETRY_MS,
        onState: (state) => this.onConnection(state),
        onFrame: (frame) => this.onNotice(frame),
      }).catch(() => undefined);
      if (this.client !== undefined) break;
      this.showState('reconnecting');
      const wait = Math.min(MAX_RETRY_MS, FIRST_RETRY_MS * 2 ** attempt);
      await new Promise((resolve) => setTimeout(resolve, wait * (0.75 + Math.random() * 0.5)));
    }
    if (this.client === undefined) return;
    this.onConnection('open');
    await this.openConversation(this.store.current());
  }

  /** The client reconnected by itself (sessions reattached, answers resumed) or lost the connection. */
  private onConnection(state: 'open' | 'reconnecting' | 'closed'): void {
    if (state === 'closed') return;
    this.showState(state);
    if (state !== 'open' || this.client === undefined) return;
    this.applyWelcome(this.client.client.welcome);
    this.setBusy(this.running !== undefined);
  }

  private applyWelcome(welcome: Welcome): void {
    this.$('.reasoning-control').hidden = !welcome.model.reasoning;
    // The server refuses more than it allows (its setting, capped by the context).
    this.$<HTMLInputElement>('.max-tokens').max = String(welcome.limits.maxTokens);
  }

  /** Frames no request waits for. */
  private onNotice(frame: ServerFrame): void {
    if (frame.type === 'server.notice')
      this.status('The server is restarting; the answer will resume when it is back.');
  }

  /** Reattaches a stored conversation (after a reload, or chosen from the list), or starts a new one. */
  private async openConversation(conversation: StoredConversation | undefined): Promise<void> {
    const client = this.client;
    if (client === undefined) return;
    const attempt = ++this.opening;
    const previous = this.sessionId;
    try {
      const { sessionId, resumeToken } = conversation ?? {};
      const existing = sessionId !== undefined && resumeToken !== undefined;
      const session = await client.openSession(existing ? { sessionId, resumeToken } : {});
      if (attempt !== this.opening) {
        await client.closeSession(session.sessionId).catch(() => undefined);
        return;
      }
      // One conversation at a time on the connection: the one left keeps living on the server.
      if (previous !== undefined && previous !== session.sessionId)
        void client.closeSession(previous).catch(() => undefined);
      const known = this.store.list().find((c) => c.sessionId === session.sessionId);
      const { sessionId: id, resumeToken: token } = session;
      this.store.save({ sessionId: id, resumeToken: token, title: known?.title ?? 'New chat', updatedAt: Date.now() });
      this.sessionId = session.sessionId;
      this.renderConversationList();
      this.renderHistory(session.resumed ? session.history : []);
      this.setBusy(false);
    } catch (error) {
      if (attempt !== this.opening) return;
      if (conversation === undefined) {
        this.status(describeError(error as ClientError), true);
        return;
      }
      // The conversation expired on the server (or the server restarted): start a new one.
      this.store.forget(conversation.sessionId);
      this.store.clearCurrent();
      this.sessionId = undefined;
      await this.openConversation(undefined);
    }
  }

  private send(): void {
    const input = this.$<HTMLTextAreaElement>('textarea');
    const content = input.value.trim();
    const client = this.client;
    if (content === '' || this.sessionId === undefined || this.running !== undefined) return;
    if (client === undefined || !client.client.isOpen) {
      this.status('Not connected yet; your message is still in the box.', true);
      return;
    }
    input.value = '';
    this.titleConversation(content);
    const log = this.$('.log');
    this.stickToBottom(() => new MessageView(log, 'user', content));
    const view = this.stickToBottom(() => new MessageView(log, 'assistant'));
    const generation = client.chat(this.sessionId, content, this.params());
    generation.onQueued = (position) =>
      this.status(position > 0 ? `Waiting in line: position ${position}` : 'Starting…');
    generation.onStarted = () => this.status('Answering…');
    const running = { generation, view, sentAt: performance.now(), firstTokenAt: undefined };
    this.running = running;
    this.setBusy(true);
    this.status('Sending…');
    void this.follow(running);
  }

  /** Streams the answer into its view (across reconnects), then notes how it ended. */
  private async follow(running: Running): Promise<void> {
    try {
      for await (const chunk of running.generation) {
        running.firstTokenAt ??= performance.now();
        this.stickToBottom(() => running.view.append(chunk.text, chunk.channel));
      }
      this.onDone(running, await running.generation.done);
    } catch (error) {
      const refusal = error as ClientError;
      running.view.note(describeError(refusal));
      this.status(describeError(refusal), true);
      // Its session is gone (expired, or the server restarted without it): start a new conversation.
      if (refusal.code === 'not_found' && this.sessionId === running.generation.sessionId) {
        this.store.forget(running.generation.sessionId);
        this.store.clearCurrent();
        this.sessionId = undefined;
        void this.openConversation(undefined);
      }
    } finally {
      if (this.running === running) this.running = undefined;
      this.setBusy(this.running !== undefined);
    }
  }

  private onDone(running: Running, done: GenerationDone): void {
    const now = performance.now();
    const ttft = running.firstTokenAt === undefined ? undefined : running.firstTokenAt - running.sentAt;
    const seconds = running.firstTokenAt === undefined ? 0 : (now - running.firstTokenAt) / 1000;
    const rate = seconds > 0 ? done.usage.completionTokens / seconds : undefined;
    if (done.error !== undefined) running.view.note(describeError({ ...done.error }));
    else noteFinish(running.view, done.finish);
    const parts = [ttft === undefined ? 'No tokens' : `First token after ${Math.round(ttft)} ms`];
    if (rate !== undefined) parts.push(`${rate.toFixed(0)} tokens/s`);
    this.status(`${parts.join(' · ')} · ${done.usage.completionTokens} tokens`);
  }

  private stop(): void {
    const generation = this.running?.generation;
    if (generation?.genId === undefined) return;
    this.status('Stopping…');
    generation.cancel().then(
      (ack) => {
        if (ack.status === 'cancelled' && !generation.finished) this.status('Stop acknowledged.');
      },
      () => undefined,
    );
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
      this.store.clearCurrent();
      this.setBusy(false);
      void this.openConversation(undefined);
    });
    this.$<HTMLSelectElement>('.conversations').addEventListener('change', (event) => {
      const chosen = this.store.list().find((c) => c.sessionId === (event.target as HTMLSelectElement).value);
      if (chosen === undefined || this.running !== undefined) return;
      void this.openConversation(chosen);
    });
  }

  private renderHistory(history: HistoryMessage[]): void {
    const log = this.$('.log');
    log.replaceChildren();
    for (const message of history) {
      if (message.role === 'system') continue;
      const view = new MessageView(log, message.role, message.content);
      if (message.finish !== undefined) noteFinish(view, message.finish);
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

/** How an answer that did not simply stop ended, said under it (live and in restored history alike). */
function noteFinish(view: MessageView, finish: FinishReason): void {
  const notes: Partial<Record<FinishReason, string>> = {
    cancelled: 'Stopped.',
    length: 'Reached the maximum length.',
    timeout: 'Took too long and was stopped.',
    error: 'Failed.',
    interrupted: 'Interrupted: the server stopped before this answer finished. Send your message again to go on.',
  };
  const note = notes[finish];
  if (note !== undefined) view.note(note);
}
