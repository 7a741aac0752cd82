import type { GenerationParams } from '../protocol/clientFrames.js';
import { ChatClient, type ConnectOptions, type SessionInfo, type ToolResultInput } from './ChatClient.js';
import { ClientError } from './ClientError.js';
import type { ClientGeneration } from './ClientGeneration.js';

export type ConnectionState = 'open' | 'reconnecting' | 'closed';

export type ReconnectOptions = ConnectOptions & {
  /** First wait before reconnecting; it doubles up to `maxDelayMs`, each with up to half again of jitter. */
  initialDelayMs?: number;
  maxDelayMs?: number;
  /** Told when the connection drops, comes back, or is closed for good. */
  onState?: (state: ConnectionState) => void;
  /** A browser needs a fresh single-use ticket for every connection it opens. */
  ticket?: never;
  getTicket?: () => Promise<string | undefined>;
};

/**
 * A client that outlives its sockets: when the connection drops it reconnects with growing,
 * jittered waits, reattaches every session it opened, and resumes each running generation after
 * the last `seq` it holds (nothing duplicated, nothing missing).
 */
export class ReconnectingClient {
  private readonly sessions = new Map<string, SessionInfo>();
  private closing = false;

  private constructor(
    private current: ChatClient,
    private readonly url: string,
    private readonly options: ReconnectOptions,
  ) {
    this.watch(current);
  }

  static async connect(url: string, options: ReconnectOptions = {}): Promise<ReconnectingClient> {
    const client = await ChatClient.connect(url, await connectOptions(options));
    return new ReconnectingClient(client, url, options);
  }

  /** The connection in use now. */
  get client(): ChatClient {
    return this.current;
  }

  async openSession(
    options: { system?: string } | { sessionId: string; resumeToken: string } = {},
  ): Promise<SessionInfo> {
    const session = await this.current.openSession(options);
    this.sessions.set(session.sessionId, session);
    return session;
  }

  async closeSession(sessionId: string, { forget = false } = {}): Promise<void> {
    this.sessions.delete(sessionId);
    await this.current.closeSession(sessionId, { forget });
  }

  /** Answers the last answer's tool calls (see ChatClient.sendToolResults). */
  sendToolResults(sessionId: string, results: readonly ToolResultInput[]): ClientGeneration {
    return this.current.sendToolResults(sessionId, results);
  }

  chat(sessionId: string, content: string, params?: GenerationParams): ClientGeneration {
    return this.current.chat(sessionId, content, params);
  }

  async close(): Promise<void> {
    this.closing = true;
    await this.current.close();
    this.options.onState?.('closed');
  }

  private watch(client: ChatClient): void {
    client.keepGenerationsOnClose = true;
    void client.closed.then(() => {
      if (!this.closing) void this.reconnect(client.running);
    });
  }

  private async reconnect(running: ClientGeneration[]): Promise<void> {
    this.options.onState?.('reconnecting');
    let delayMs = this.options.initialDelayMs ?? 250;
    for (;;) {
      await sleep(delayMs * (1 + Math.random() / 2));
      if (this.closing) return;
      delayMs = Math.min(delayMs * 2, this.options.maxDelayMs ?? 5000);
      const client = await ChatClient.connect(this.url, await connectOptions(this.options)).catch(() => undefined);
      if (client === undefined) continue;
      this.current = client;
      this.watch(client);
      await this.restore(client, running);
      this.options.onState?.('open');
      return;
    }
  }

  /** Reattaches every session, then resumes what was streaming after the last seq held. */
  private async restore(client: ChatClient, running: ClientGeneration[]): Promise<void> {
    const lost = new Set<string>();
    for (const session of this.sessions.values()) {
      const { sessionId, resumeToken } = session;
      await client.openSession({ sessionId, resumeToken }).catch(() => lost.add(sessionId));
    }
    for (const generation of running) {
      if (generation.finished) continue;
      client.adopt(generation);
      if (lost.has(generation.sessionId)) {
        generation.fail(new ClientError('not_found', 'Its session could not be reattached'));
        continue;
      }
      await generation.resume().catch((error: ClientError) => generation.fail(error));
    }
  }
}

async function connectOptions(options: ReconnectOptions): Promise<ConnectOptions> {
  const ticket = await options.getTicket?.();
  const { getTicket: _, ...rest } = options;
  return ticket === undefined ? rest : { ...rest, ticket };
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
