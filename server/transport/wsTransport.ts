import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { type WebSocket, WebSocketServer } from 'ws';
import {
  type HttpHandler,
  type HttpResponse,
  ListenError,
  PayloadTooLargeError,
  parseProtocolHeader,
  REQUEST_DEADLINE_MS,
  readWithDeadline,
  refusedUpgrade,
  type SendStatus,
  type SocketHandle,
  type SocketHandlers,
  type Transport,
  type TransportOptions,
} from './Transport.js';

/** The fallback transport: Node's http server and the `ws` package, behind the same interface. */
export class WsTransport<A> implements Transport {
  private readonly server: Server;
  private readonly wss: WebSocketServer;
  private readonly chosenProtocol = new WeakMap<IncomingMessage, string>();
  private readonly headerDeadlines = new WeakMap<Socket, NodeJS.Timeout>();

  constructor(
    private readonly options: TransportOptions,
    private readonly sockets: SocketHandlers<A>,
    http: HttpHandler,
  ) {
    this.wss = new WebSocketServer({
      noServer: true,
      maxPayload: options.hardMaxFrameBytes,
      perMessageDeflate: false,
      handleProtocols: (_offered, req) => this.chosenProtocol.get(req) ?? false,
    });
    this.server = createServer(
      // As uWebSockets.js does: a request must arrive within 10 s (Node checks keep-alive requests).
      { headersTimeout: REQUEST_DEADLINE_MS, requestTimeout: REQUEST_DEADLINE_MS, connectionsCheckingInterval: 1000 },
      (req, res) => http(requestOf(req), new NodeHttpResponse(req, res)),
    );
    // A connection's first request headers get a deadline of our own, whatever Node's checks do.
    this.server.on('connection', (socket: Socket) => {
      const deadline = setTimeout(() => socket.destroy(), REQUEST_DEADLINE_MS);
      deadline.unref();
      this.headerDeadlines.set(socket, deadline);
      socket.once('close', () => clearTimeout(deadline));
    });
    this.server.on('request', (req: IncomingMessage) => this.headersArrived(req.socket));
    this.server.on('upgrade', (req: IncomingMessage, socket: Socket, head: Buffer) => this.upgrade(req, socket, head));
  }

  listen(host: string, port: number): Promise<number> {
    return new Promise((resolve, reject) => {
      this.server.once('error', (error: NodeJS.ErrnoException) =>
        reject(error.code === 'EADDRINUSE' ? new ListenError(host, port) : new ListenError(host, port, error.message)),
      );
      this.server.listen({ port, host, exclusive: true }, () => {
        const address = this.server.address();
        resolve(typeof address === 'object' && address !== null ? address.port : port);
      });
    });
  }

  stopListening(): void {
    this.server.close();
  }

  private headersArrived(socket: Socket): void {
    clearTimeout(this.headerDeadlines.get(socket));
    this.headerDeadlines.delete(socket);
  }

  private upgrade(req: IncomingMessage, socket: Socket, head: Buffer): void {
    this.headersArrived(socket);
    const request = requestOf(req);
    if (request.path !== this.options.wsPath) {
      socket.end('HTTP/1.1 404 Not Found\r\nconnection: close\r\ncontent-length: 0\r\n\r\n');
      return;
    }
    const decided = this.sockets.upgrade({
      path: request.path,
      headers: request.headers,
      offeredProtocols: parseProtocolHeader(request.headers['sec-websocket-protocol'] ?? ''),
      remoteAddress: socket.remoteAddress ?? '',
    });
    void Promise.resolve(decided).then((decision) => {
      if (!decision.accept) {
        const { status, body } = refusedUpgrade(decision.refusal);
        socket.end(
          `HTTP/1.1 ${status}\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`,
        );
        return;
      }
      if (socket.destroyed) {
        this.sockets.upgradeAbandoned(decision.attachment);
        return;
      }
      this.chosenProtocol.set(req, decision.protocol);
      this.wss.handleUpgrade(req, socket, head, (ws) => this.open(ws, socket, decision.attachment));
    });
  }

  private open(ws: WebSocket, raw: Socket, attachment: A): void {
    const handle = new WsSocket(ws, raw, attachment);
    raw.on('drain', () => this.sockets.drain(handle));
    ws.on('message', (data: Buffer, isBinary: boolean) => {
      this.sockets.message(handle, isBinary ? null : data.toString('utf8'), data.byteLength);
    });
    ws.on('close', (code: number, reason: Buffer) => {
      handle.markClosed();
      clearInterval(heartbeat);
      this.sockets.close(handle, code, reason.toString('utf8'));
    });
    ws.on('error', () => ws.terminate());
    // Pings keep live clients alive; a client silent for a whole idle period is cut off.
    let alive = true;
    ws.on('pong', () => (alive = true));
    ws.on('message', () => (alive = true));
    const heartbeat = setInterval(() => {
      if (!alive) return ws.terminate();
      alive = false;
      ws.ping();
    }, this.options.idleTimeoutSec * 500);
    heartbeat.unref();
    this.sockets.open(handle);
  }
}

class WsSocket<A> implements SocketHandle<A> {
  private isClosed = false;
  readonly remoteAddress: string;

  constructor(
    private readonly ws: WebSocket,
    raw: Socket,
    readonly attachment: A,
  ) {
    this.remoteAddress = raw.remoteAddress ?? '';
  }

  get closed(): boolean {
    return this.isClosed;
  }

  send(text: string): SendStatus {
    if (this.isClosed) return 'closed';
    this.ws.send(text);
    return this.ws.bufferedAmount > 0 ? 'buffered' : 'sent';
  }

  bufferedBytes(): number {
    return this.isClosed ? 0 : this.ws.bufferedAmount;
  }

  close(code: number, reason: string): void {
    if (!this.isClosed) this.ws.close(code, reason);
  }

  markClosed(): void {
    this.isClosed = true;
  }
}

function requestOf(req: IncomingMessage) {
  const url = new URL(req.url ?? '/', 'http://localhost');
  const headers: Record<string, string> = {};
  for (const [name, value] of Object.entries(req.headers)) {
    if (value !== undefined) headers[name] = Array.isArray(value) ? value.join(', ') : value;
  }
  return { method: (req.method ?? 'GET').toUpperCase(), path: url.pathname, query: url.search.slice(1), headers };
}

class NodeHttpResponse implements HttpResponse {
  private isAborted = false;

  constructor(
    private readonly req: IncomingMessage,
    private readonly res: ServerResponse,
  ) {
    res.on('close', () => {
      if (!res.writableFinished) this.isAborted = true;
    });
  }

  get aborted(): boolean {
    return this.isAborted;
  }

  onAborted(handler: () => void): void {
    this.res.on('close', () => {
      if (!this.res.writableFinished) handler();
    });
  }

  readBody(maxBytes: number): Promise<Buffer> {
    return readWithDeadline(
      (resolve, reject) => {
        const chunks: Buffer[] = [];
        let size = 0;
        this.req.on('data', (chunk: Buffer) => {
          size += chunk.byteLength;
          if (size > maxBytes) {
            reject(new PayloadTooLargeError(`Request body is larger than ${maxBytes} bytes`));
            this.req.destroy();
            return;
          }
          chunks.push(chunk);
        });
        this.req.on('end', () => resolve(Buffer.concat(chunks)));
        this.req.on('error', reject);
      },
      // The answer (408) still goes out; then the connection closes.
      () => this.res.setHeader('connection', 'close'),
    );
  }

  writeHead(status: number, headers: Readonly<Record<string, string>>): void {
    if (!this.res.headersSent && !this.isAborted) this.res.writeHead(status, headers);
  }

  write(chunk: string): boolean {
    return this.isAborted ? false : this.res.write(chunk);
  }

  get backlogBytes(): number {
    return this.res.writableLength;
  }

  end(body?: string | Buffer): void {
    if (!this.isAborted && !this.res.writableEnded) this.res.end(body);
  }
}
