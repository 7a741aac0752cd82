import type { WebSocketLike } from '../../../client/ChatClient.js';
import { ReconnectingClient, type ReconnectOptions } from '../../../client/ReconnectingClient.js';
import type { ServerFrame } from '../../../protocol/serverFrames.js';
import { type Described, describeRefusal } from './describeRefusal.js';
import { fetchTicket, ticketProblem } from './fetchTicket.js';
import type { Problem } from './Problem.js';
import { probeUpgrade } from './probeUpgrade.js';

export type WidgetState = 'connecting' | 'open' | 'reconnecting' | 'refused';

export type WidgetConnectionOptions = {
  url: string;
  /** The embedding site's address that hands out tickets (a keyed server), or none. */
  ticketUrl: string | undefined;
  onState: (state: WidgetState, problem: Problem | undefined) => void;
  onFrame: (frame: ServerFrame) => void;
};

const FIRST_RETRY_MS = 250;
const MAX_RETRY_MS = 5000;
/** Refusals the probe cannot explain (see describeRefusal) before the widget stops trying. */
const MAX_UNEXPLAINED = 5;

/**
 * The widget's connection: a ReconnectingClient (which reattaches sessions and resumes answers
 * after a drop) plus what only a page needs. Before each attempt it fetches a ticket from
 * `ticketUrl`; after each refused upgrade it asks the server why (probeUpgrade) and says it in
 * words; on a refusal that retrying cannot cure it stops for good, until `start` is called again.
 */
export class WidgetConnection {
  client: ReconnectingClient | undefined;
  private state: WidgetState = 'connecting';
  private stopped = false;
  private ticketFailure: Problem | undefined;
  /** The explanation of the last refused attempt, looked up as soon as it was refused. */
  private diagnosis: Promise<Described> | undefined;
  private unexplained = 0;

  constructor(private readonly options: WidgetConnectionOptions) {}

  /** Connects, retrying with growing, jittered waits; undefined when refused for good or stopped. */
  async start(): Promise<ReconnectingClient | undefined> {
    this.show('connecting', undefined);
    for (let attempt = 0; !this.stopped; attempt++) {
      this.diagnosis = undefined;
      const client = await ReconnectingClient.connect(this.options.url, this.clientOptions()).catch(() => undefined);
      if (this.stopped) {
        void client?.close();
        return undefined;
      }
      if (client !== undefined) {
        this.client = client;
        this.unexplained = 0;
        this.show('open', undefined);
        return client;
      }
      const problem = await (this.diagnosis ?? { text: 'The connection failed. Retrying…', final: false });
      if (problem.final) return this.refuse(problem);
      this.show('reconnecting', problem);
      const wait = Math.min(MAX_RETRY_MS, FIRST_RETRY_MS * 2 ** attempt);
      await new Promise((resolve) => setTimeout(resolve, wait * (0.75 + Math.random() * 0.5)));
    }
    return undefined;
  }

  /** Closes for good (the element left the page). */
  stop(): void {
    this.stopped = true;
    void this.client?.close();
  }

  private clientOptions(): ReconnectOptions {
    const { ticketUrl } = this.options;
    return {
      initialDelayMs: FIRST_RETRY_MS,
      maxDelayMs: MAX_RETRY_MS,
      createSocket: (url, protocols) => this.openSocket(url, protocols),
      onState: (state) => {
        if (state === 'open') this.unexplained = 0;
        if (state !== 'closed' && !this.stopped)
          this.show(state, state === 'open' ? undefined : { text: 'Connection lost. Reconnecting…', final: false });
      },
      onFrame: this.options.onFrame,
      ...(ticketUrl === undefined ? {} : { getTicket: () => this.ticket(ticketUrl) }),
    };
  }

  /** A browser WebSocket that reports an upgrade refused (closed before it opened) to `diagnose`. */
  private openSocket(url: string, protocols: string[]): WebSocketLike {
    const socket = new WebSocket(url, protocols);
    let opened = false;
    socket.addEventListener('open', () => {
      opened = true;
    });
    // Registered before the client's own handler, so the diagnosis is under way when it hears of the close.
    socket.addEventListener('close', () => {
      if (opened) return;
      const diagnosis = this.diagnose();
      this.diagnosis = diagnosis;
      if (this.client !== undefined) void diagnosis.then((problem) => this.whileReconnecting(problem));
    });
    // The DOM's handler types are narrower than the client's structural ones; the shapes match.
    return socket as unknown as WebSocketLike;
  }

  /** Never throws (the client's reconnect loop calls it): a failure is kept for the diagnosis. */
  private async ticket(ticketUrl: string): Promise<string | undefined> {
    this.ticketFailure = undefined;
    try {
      return await fetchTicket(ticketUrl);
    } catch (error) {
      this.ticketFailure = ticketProblem(ticketUrl, error);
      return undefined;
    }
  }

  private async diagnose(): Promise<Described> {
    if (this.ticketFailure !== undefined) return this.ticketFailure;
    const { url, ticketUrl } = this.options;
    const problem = describeRefusal(await probeUpgrade(url), {
      server: new URL(url).host,
      origin: location.origin,
      ticketUrl,
    });
    if (!problem.unexplained || ++this.unexplained < MAX_UNEXPLAINED) return problem;
    return { text: `${problem.text.replace(/ Retrying…$/, '')} Gave up after ${MAX_UNEXPLAINED} tries.`, final: true };
  }

  /** A refused attempt of the client's own reconnect loop. */
  private whileReconnecting(problem: Problem): void {
    if (this.stopped || this.state === 'open') return;
    if (problem.final) this.refuse(problem);
    else this.show('reconnecting', problem);
  }

  private refuse(problem: Problem): undefined {
    this.stopped = true;
    void this.client?.close();
    this.show('refused', problem);
    return undefined;
  }

  private show(state: WidgetState, problem: Problem | undefined): void {
    this.state = state;
    this.options.onState(state, problem);
  }
}
