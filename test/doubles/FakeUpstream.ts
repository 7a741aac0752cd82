import { once } from 'node:events';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';

/** What the double does with one completion request. */
export type Script =
  | {
      kind: 'answer';
      /** Each sent as one chunk; `reasoning:` prefixed ones on the reasoning channel. */
      pieces: string[];
      delayMs?: number;
      finish?: 'stop' | 'length';
      usage?: { prompt_tokens: number; cached_tokens?: number };
    }
  | { kind: 'status'; status: number; error: { message: string; code?: string; type?: string } }
  /** Sends these pieces, then nothing more while keeping the connection open. */
  | { kind: 'stall'; pieces: string[] }
  /** Sends these pieces, then destroys the connection. */
  | { kind: 'cut'; pieces: string[] };

export type FakeUpstreamOptions = {
  models?: string[];
  /** How it tells its capacity: llama-server's /props, this server's /readyz, or not at all. */
  identity?: 'props' | 'readyz' | 'none';
  slots?: number;
  /** When set, every request without `Authorization: Bearer <apiKey>` gets 401. */
  apiKey?: string;
  /**
   * Closes the connection after each streamed answer although its headers offer keep-alive, as
   * llama-server does: a client that sends its next request on that connection finds it gone.
   */
  closeAfterStream?: boolean;
  /** Decides each completion request's answer (index counts from 0). */
  script?: (body: Record<string, unknown>, index: number) => Script;
};

/**
 * An OpenAI-compatible inference server double (no model), scripted per request: streams, error
 * statuses, stalls and cut connections. Keeps what it was sent and how many answers are open.
 */
export class FakeUpstream {
  readonly requests: Array<Record<string, unknown>> = [];
  /** Answers streaming now; the gauge its /metrics and /slots report. */
  running = 0;
  /** Requests whose client went away before the answer ended. */
  abandoned = 0;
  private server: Server;
  private readonly sockets = new Set<Socket>();
  /** Connections an answer ended on, with closeAfterStream: what else comes on them goes unanswered. */
  private readonly closing = new WeakSet<Socket>();
  private port = 0;

  constructor(private readonly options: FakeUpstreamOptions = {}) {
    this.server = this.makeServer();
  }

  static async start(options: FakeUpstreamOptions = {}): Promise<FakeUpstream> {
    const upstream = new FakeUpstream(options);
    await upstream.listen();
    return upstream;
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}/v1`;
  }

  /** Stops answering at once, as a killed process does: every connection is cut. */
  async kill(): Promise<void> {
    for (const socket of this.sockets) socket.destroy();
    this.server.close();
    await once(this.server, 'close');
  }

  /** Listens again on the same port. */
  async restart(): Promise<void> {
    this.server = this.makeServer();
    await this.listen();
  }

  private async listen(): Promise<void> {
    this.server.listen(this.port, '127.0.0.1');
    await once(this.server, 'listening');
    this.port = (this.server.address() as AddressInfo).port;
  }

  private makeServer(): Server {
    const server = createServer((request, response) => void this.handle(request, response));
    server.on('connection', (socket) => {
      this.sockets.add(socket);
      socket.on('close', () => this.sockets.delete(socket));
    });
    return server;
  }

  private async handle(request: IncomingMessage, response: ServerResponse): Promise<void> {
    const models = this.options.models ?? ['fake-model'];
    const slots = this.options.slots ?? 4;
    const identity = this.options.identity ?? 'none';
    const json = (status: number, body: unknown) => {
      response.writeHead(status, { 'content-type': 'application/json' });
      response.end(JSON.stringify(body));
    };
    if (this.closing.has(request.socket)) return;
    const path = request.url ?? '';
    const { apiKey } = this.options;
    if (apiKey !== undefined && request.headers.authorization !== `Bearer ${apiKey}`) {
      return json(401, { error: { message: 'Invalid API key', type: 'authentication_error' } });
    }
    if (request.method === 'GET' && path === '/v1/models') return json(200, { data: models.map((id) => ({ id })) });
    if (request.method === 'GET' && path === '/props' && identity === 'props') {
      return json(200, { total_slots: slots, default_generation_settings: { n_ctx: 1024 }, endpoint_slots: true });
    }
    if (request.method === 'GET' && path === '/readyz' && identity === 'readyz') {
      return json(200, {
        status: 'ready',
        model: { name: models[0], contextSize: 2048, sequences: slots, reasoning: false },
      });
    }
    if (request.method === 'GET' && path === '/slots') {
      return json(
        200,
        Array.from({ length: slots }, (_, id) => ({ id, is_processing: id < this.running })),
      );
    }
    if (request.method === 'GET' && path === '/metrics') {
      response.end(`# TYPE llmchat_num_requests_running gauge\nllmchat_num_requests_running ${this.running}\n`);
      return;
    }
    if (request.method !== 'POST' || !path.endsWith('completions')) return json(404, { error: { message: 'no' } });
    let text = '';
    for await (const piece of request) text += String(piece);
    const body = JSON.parse(text) as Record<string, unknown>;
    const index = this.requests.push(body) - 1;
    const script = this.options.script?.(body, index) ?? { kind: 'answer', pieces: ['Hello', ' there'] };
    await this.answer(script, path.endsWith('chat/completions'), response);
  }

  private async answer(script: Script, chat: boolean, response: ServerResponse): Promise<void> {
    if (script.kind === 'status') {
      response.writeHead(script.status, { 'content-type': 'application/json' });
      response.end(JSON.stringify({ error: script.error }));
      return;
    }
    response.writeHead(200, { 'content-type': 'text/event-stream' });
    this.running += 1;
    let ended = false;
    response.on('close', () => {
      if (!ended) this.abandoned += 1;
      this.running -= 1;
    });
    const send = (payload: unknown) => response.write(`data: ${JSON.stringify(payload)}\n\n`);
    const choice = (piece: string) => {
      if (!chat) return { index: 0, text: piece, finish_reason: null };
      const reasoning = piece.startsWith('reasoning:');
      const delta = reasoning ? { reasoning_content: piece.slice(10) } : { content: piece };
      return { index: 0, delta, finish_reason: null };
    };
    for (const piece of script.pieces) {
      if (response.destroyed) return;
      send({ choices: [choice(piece)] });
      if (script.kind === 'answer' && (script.delayMs ?? 0) > 0) await delay(script.delayMs ?? 0);
    }
    if (script.kind === 'stall') return;
    if (script.kind === 'cut') {
      // Let what was written reach the client first: a destroy discards what is still buffered.
      await delay(20);
      response.destroy();
      return;
    }
    send({ choices: [{ index: 0, delta: {}, finish_reason: script.finish ?? 'stop' }] });
    const { usage } = script;
    if (usage !== undefined) {
      const details =
        usage.cached_tokens === undefined ? {} : { prompt_tokens_details: { cached_tokens: usage.cached_tokens } };
      send({
        choices: [],
        usage: { prompt_tokens: usage.prompt_tokens, completion_tokens: script.pieces.length, ...details },
      });
    }
    ended = true;
    const socket = response.socket;
    response.end('data: [DONE]\n\n', () => {
      if (this.options.closeAfterStream !== true || socket === null) return;
      // A moment later, so that a client quick to send its next request here loses it.
      this.closing.add(socket);
      setTimeout(() => socket.destroy(), CLOSE_AFTER_STREAM_MS);
    });
  }
}

const CLOSE_AFTER_STREAM_MS = 5;

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
