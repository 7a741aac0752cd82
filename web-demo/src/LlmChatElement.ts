import { ClientError } from '../../client/ClientError.js';
import { ClientGeneration } from '../../client/ClientGeneration.js';
import type { ReconnectingClient } from '../../client/ReconnectingClient.js';
import type { GenerationDone, ServerFrame } from '../../protocol/serverFrames.js';
import { WS_PATH } from '../../protocol/version.js';
import { ChatLog } from './ChatLog.js';
import { ConnectionView } from './ConnectionView.js';
import { ConversationPicker, NEW_CHAT_TITLE } from './ConversationPicker.js';
import { ConversationStore, type RunningAnswer, type StoredConversation } from './ConversationStore.js';
import type { Problem } from './connection/Problem.js';
import { WidgetConnection, type WidgetState } from './connection/WidgetConnection.js';
import { answerStats, describeFinish } from './describeAnswer.js';
import { describeError } from './describeError.js';
import type { MessageView } from './MessageView.js';
import { Settings } from './Settings.js';
import { STYLES, TEMPLATE } from './template.js';

type Running = {
  generation: ClientGeneration;
  view: MessageView;
  sessionId: string;
  sentAt: number;
  firstTokenAt: number | undefined;
  /** Picked up again after a reload, rather than sent from this page. */
  reattached: boolean;
  /** The server no longer had it when the page asked to pick it up. */
  resumeFailed: boolean;
};

const noop = () => undefined;

/**
 * `<llm-chat server="ws://host/v1/ws" ticket-url="/chat-ticket" seed="42" description="…" theme="dark">`:
 * a chat with the server, through the project's client. It keeps this browser's conversations in
 * localStorage, survives a dropped connection and a reload (the answer streaming then is picked
 * up where it was), says why it cannot connect, and renders answers as sanitised Markdown.
 */
export class LlmChatElement extends HTMLElement {
  private readonly root = this.attachShadow({ mode: 'open' });
  private readonly store = new ConversationStore();
  private log!: ChatLog;
  private settings!: Settings;
  private picker!: ConversationPicker;
  private header!: ConnectionView;
  private connection: WidgetConnection | undefined;
  private connectionState: WidgetState = 'connecting';
  private sessionId: string | undefined;
  /** Entries in the server's history of the open conversation (see RunningAnswer.historyLength). */
  private historyLength = 0;
  private running: Running | undefined;
  /** Counts conversation switches: a reply to an older one (a quick switch) is ignored. */
  private opening = 0;

  connectedCallback(): void {
    this.root.adoptedStyleSheets = [styleSheet()];
    this.root.innerHTML = TEMPLATE;
    this.log = new ChatLog(this.$('.log'));
    this.settings = new Settings(this.root);
    this.header = new ConnectionView(this.root, () => void this.connect());
    this.picker = new ConversationPicker(this.$('.conversations'), this.store, (chosen) => {
      if (this.running === undefined) void this.openConversation(chosen);
    });
    this.wireControls();
    this.picker.render(this.sessionId);
    void this.connect();
  }

  disconnectedCallback(): void {
    this.connection?.stop();
    this.connection = undefined;
  }

  private get client(): ReconnectingClient | undefined {
    return this.connection?.client;
  }

  /** The `server` attribute; without it, the server that served this script (not the embedding page's host). */
  private serverUrl(): string | undefined {
    const url = new URL(
      this.getAttribute('server') ?? WS_PATH,
      this.hasAttribute('server') ? location.href : import.meta.url,
    );
    url.protocol = url.protocol.replace(/^http/, 'ws');
    return url.protocol === 'ws:' || url.protocol === 'wss:' ? url.href : undefined;
  }

  /** Connects (or connects again after a final refusal), then opens the current conversation. */
  private async connect(): Promise<void> {
    this.connection?.stop();
    const url = this.serverUrl();
    if (url === undefined) {
      const text = `The server attribute (${this.getAttribute('server')}) is not a ws:// or wss:// address.`;
      this.onConnectionState('refused', { text, final: true });
      return;
    }
    const connection = new WidgetConnection({
      url,
      ticketUrl: this.getAttribute('ticket-url') ?? undefined,
      onState: (state, problem) => {
        if (this.connection === connection) this.onConnectionState(state, problem);
      },
      onFrame: (frame) => this.onNotice(frame),
    });
    this.connection = connection;
    const client = await connection.start();
    if (client === undefined || this.connection !== connection) return;
    await this.openConversation(this.store.current());
  }

  /** Connected, reconnecting (the client reattaches and resumes by itself), or refused for good. */
  private onConnectionState(state: WidgetState, problem: Problem | undefined): void {
    this.connectionState = state;
    this.header.show(state, problem);
    const welcome = this.client?.client.welcome;
    if (state === 'open' && welcome !== undefined) {
      this.header.showModel(welcome, this.getAttribute('description'));
      this.settings.apply(welcome);
    }
    // Refused for good: nothing will resume the answer, so it ends here (and says so).
    if (state === 'refused') this.running?.generation.fail(new ClientError('connection_closed', 'Refused'));
    if (this.running !== undefined)
      this.status(
        state === 'open' ? 'Answering…' : 'Connection lost: the answer goes on from where it was once reconnected.',
      );
    this.refreshControls();
  }

  /** Frames no request waits for. */
  private onNotice(frame: ServerFrame): void {
    if (frame.type !== 'server.notice') return;
    this.status(`The server is restarting${this.running ? '; the answer will go on when it is back' : ''}.`);
  }

  /** Reattaches a stored conversation (after a reload, or chosen from the list), or starts a new one. */
  private async openConversation(conversation: StoredConversation | undefined): Promise<void> {
    const client = this.client;
    if (client === undefined) return;
    const attempt = ++this.opening;
    const previous = this.sessionId;
    try {
      const session = await client.openSession(
        conversation === undefined ? {} : { sessionId: conversation.sessionId, resumeToken: conversation.resumeToken },
      );
      if (attempt !== this.opening) {
        await client.closeSession(session.sessionId).catch(noop);
        return;
      }
      // One conversation at a time on the connection: the one left keeps living on the server.
      if (previous !== undefined && previous !== session.sessionId) void client.closeSession(previous).catch(noop);
      const known = this.store.find(session.sessionId);
      const { sessionId, resumeToken } = session;
      this.store.save({
        ...known,
        sessionId,
        resumeToken,
        title: known?.title ?? NEW_CHAT_TITLE,
        updatedAt: Date.now(),
      });
      this.sessionId = sessionId;
      this.historyLength = session.history.length;
      this.picker.render(this.sessionId);
      this.log.show(session.resumed ? session.history : []);
      if (known?.running !== undefined && session.resumed) this.reattach(client, sessionId, known.running);
      this.refreshControls();
    } catch (error) {
      if (attempt !== this.opening) return;
      if (conversation === undefined) {
        this.status(describeError(error as ClientError), true);
        return;
      }
      // The conversation expired on the server (or the server restarted without it): start a new one.
      this.store.forget(conversation.sessionId);
      this.store.clearCurrent();
      this.sessionId = undefined;
      await this.openConversation(undefined);
    }
  }

  /**
   * Shows the answer that was streaming when the page was left and follows it: resuming after seq 0
   * replays what it has so far in a frame or two (shown at once), then the rest streams live.
   */
  private reattach(client: ReconnectingClient, sessionId: string, answer: RunningAnswer): void {
    if (this.historyLength >= answer.historyLength + 2) {
      this.store.setRunning(sessionId, undefined);
      return;
    }
    this.log.addQuestion(answer.question);
    const generation = new ClientGeneration(sessionId, undefined, client.client);
    generation.genId = answer.genId;
    client.client.adopt(generation);
    const running: Running = {
      ...{ generation, view: this.log.addAnswer(), sessionId, sentAt: performance.now(), firstTokenAt: undefined },
      ...{ reattached: true, resumeFailed: false },
    };
    this.running = running;
    this.status('Picking the answer up where it was…');
    generation.resume().catch((error: ClientError) => {
      running.resumeFailed = true;
      generation.fail(error);
    });
    void this.follow(running);
  }

  private send(): void {
    const input = this.$<HTMLTextAreaElement>('textarea');
    const content = input.value.trim();
    const client = this.client;
    if (content === '') return;
    if (this.connectionState !== 'open' || client === undefined || !client.client.isOpen) {
      this.status('Not connected: your message stays in the box until the connection is back.', true);
      return;
    }
    if (this.running !== undefined) {
      this.status('Still answering: wait for the answer to end, or press Stop.', true);
      return;
    }
    const sessionId = this.sessionId;
    if (sessionId === undefined) return;
    input.value = '';
    this.picker.title(content);
    this.log.addQuestion(content);
    const view = this.log.addAnswer();
    const generation = client.chat(sessionId, content, this.settings.params(this.getAttribute('seed')));
    const { historyLength } = this;
    generation.onQueued = (position) => {
      this.status(position > 0 ? `Waiting in line: position ${position}` : 'Starting…');
      this.refreshControls();
    };
    generation.onStarted = () => this.status('Answering…');
    // Noted for a reload: the page that comes back picks this answer up (see reattach).
    generation.queued.then(({ genId }) => {
      if (!generation.finished) this.store.setRunning(sessionId, { genId, question: content, historyLength });
    }, noop);
    const running = { generation, view, sessionId, sentAt: performance.now(), firstTokenAt: undefined };
    this.running = { ...running, reattached: false, resumeFailed: false };
    this.refreshControls();
    this.status('Sending…');
    void this.follow(this.running);
  }

  /** Streams the answer into its view (across reconnects), then notes how it ended. */
  private async follow(running: Running): Promise<void> {
    try {
      for await (const chunk of running.generation) {
        if (running.firstTokenAt === undefined && running.reattached) this.status('Answering…');
        running.firstTokenAt ??= performance.now();
        running.view.append(chunk.text, chunk.channel);
      }
      this.onDone(running, await running.generation.done);
    } catch (error) {
      this.onFailed(running, error as ClientError);
    } finally {
      this.log.finish(running.view);
      const { genId } = running.generation;
      if (genId !== undefined) this.store.setRunning(running.sessionId, undefined, genId);
      if (this.running === running) this.running = undefined;
      this.refreshControls();
    }
  }

  private onDone(running: Running, done: GenerationDone): void {
    const note = done.error !== undefined ? describeError({ ...done.error }) : describeFinish(done.finish);
    if (note !== undefined) running.view.note(note);
    // The server keeps a turn that produced text (see the README's protocol section).
    if (running.sessionId === this.sessionId && (running.view.hasText || done.usage.completionTokens > 0))
      this.historyLength += 2;
    this.status(answerStats(running, done, performance.now()));
  }

  private onFailed(running: Running, refusal: ClientError): void {
    if (running.resumeFailed) {
      running.view.note('This answer could not be picked up again: the server no longer has it.');
      this.status('');
      return;
    }
    running.view.note(describeError(refusal));
    this.status(describeError(refusal), true);
    // Its session is gone (expired, or the server restarted without it): start a new conversation.
    if (refusal.code === 'not_found' && this.sessionId === running.sessionId) {
      this.store.forget(running.sessionId);
      this.store.clearCurrent();
      this.sessionId = undefined;
      void this.openConversation(undefined);
    }
  }

  private stop(): void {
    const generation = this.running?.generation;
    if (generation?.genId === undefined || this.connectionState !== 'open') return;
    this.status('Stopping…');
    generation.cancel().then((ack) => {
      if (ack.status === 'cancelled' && !generation.finished) this.status('Stop acknowledged.');
    }, noop);
  }

  private wireControls(): void {
    const input = this.$<HTMLTextAreaElement>('textarea');
    this.$('form').addEventListener('submit', (event) => {
      event.preventDefault();
      this.send();
    });
    input.addEventListener('keydown', (event) => {
      if (event.key === 'Enter' && !event.shiftKey && !event.isComposing) {
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
      void this.openConversation(undefined);
    });
  }

  /** What may be pressed follows from the connection, the conversation and the running answer. */
  private refreshControls(): void {
    const open = this.connectionState === 'open';
    const busy = this.running !== undefined;
    this.$<HTMLButtonElement>('.send').disabled = !open || busy || this.sessionId === undefined;
    this.$<HTMLButtonElement>('.stop').disabled = !open || this.running?.generation.genId === undefined;
    this.$<HTMLButtonElement>('.new').disabled = !open || busy;
    this.picker.select.disabled = !open || busy;
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

let sheet: CSSStyleSheet | undefined;

/** One stylesheet shared by every widget on the page; adopted, so a page's CSP on inline styles does not block it. */
function styleSheet(): CSSStyleSheet {
  if (sheet === undefined) {
    sheet = new CSSStyleSheet();
    sheet.replaceSync(STYLES);
  }
  return sheet;
}
