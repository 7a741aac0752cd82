import type { HttpResponse as UwsResponse, WebSocket } from 'uWebSockets.js';
import uWS from 'uWebSockets.js';
import {
  type HttpHandler,
  type HttpResponse,
  ListenError,
  PayloadTooLargeError,
  parseProtocolHeader,
  readWithDeadline,
  refusedUpgrade,
  type SendStatus,
  type SocketHandle,
  type SocketHandlers,
  statusLine,
  type Transport,
  type TransportOptions,
  type UpgradeDecision,
} from './Transport.js';

type UserData<A> = { handle?: UwsSocket<A>; remoteAddress: string; attachment: A };

/** The default transport: uWebSockets.js for both WebSocket and HTTP. */
export class UwsTransport<A> implements Transport {
  private readonly app = uWS.App();
  private listenSocket: uWS.us_listen_socket | undefined;

  constructor(options: TransportOptions, sockets: SocketHandlers<A>, http: HttpHandler) {
    this.app.ws<UserData<A>>(options.wsPath, {
      compression: uWS.DISABLED,
      maxPayloadLength: options.hardMaxFrameBytes,
      maxBackpressure: options.maxBackpressureBytes,
      // Past maxBackpressure, close rather than silently drop frames.
      closeOnBackpressureLimit: 1,
      idleTimeout: options.idleTimeoutSec,
      sendPingsAutomatically: true,
      upgrade: (res, req, context) => {
        const headers: Record<string, string> = {};
        req.forEach((key, value) => {
          headers[key] = value;
        });
        const remoteAddress = Buffer.from(res.getRemoteAddressAsText()).toString();
        const decided = sockets.upgrade({
          path: req.getUrl(),
          headers,
          offeredProtocols: parseProtocolHeader(headers['sec-websocket-protocol'] ?? ''),
          remoteAddress,
        });
        const answer = (decision: UpgradeDecision<A>) => {
          if (!decision.accept) {
            const { status, body } = refusedUpgrade(decision.refusal);
            res.writeStatus(status).writeHeader('content-type', 'application/json').end(body);
            return;
          }
          res.upgrade<UserData<A>>(
            { remoteAddress, attachment: decision.attachment },
            headers['sec-websocket-key'] ?? '',
            decision.protocol,
            headers['sec-websocket-extensions'] ?? '',
            context,
          );
        };
        if (!(decided instanceof Promise)) {
          res.cork(() => answer(decided));
          return;
        }
        // Decided later: uWS needs to know if the client leaves meanwhile, and a corked answer.
        let aborted = false;
        res.onAborted(() => {
          aborted = true;
        });
        void decided.then((decision) => {
          if (!aborted) res.cork(() => answer(decision));
          else if (decision.accept) sockets.upgradeAbandoned(decision.attachment);
        });
      },
      open: (ws) => {
        const handle = new UwsSocket<A>(ws);
        ws.getUserData().handle = handle;
        sockets.open(handle);
      },
      message: (ws, message, isBinary) => {
        const handle = ws.getUserData().handle;
        if (handle === undefined) return;
        const text = isBinary ? null : Buffer.from(message).toString('utf8');
        sockets.message(handle, text, message.byteLength);
      },
      drain: (ws) => {
        const handle = ws.getUserData().handle;
        if (handle !== undefined) sockets.drain(handle);
      },
      close: (ws, code, message) => {
        const handle = ws.getUserData().handle;
        if (handle === undefined) return;
        handle.markClosed();
        sockets.close(handle, code, Buffer.from(message).toString('utf8'));
      },
    });
    this.app.any('/*', (res, req) => {
      const headers: Record<string, string> = {};
      req.forEach((key, value) => {
        headers[key] = value;
      });
      const request = {
        method: req.getCaseSensitiveMethod().toUpperCase(),
        path: req.getUrl(),
        query: req.getQuery() ?? '',
        headers,
      };
      http(request, new UwsHttpResponse(res, options.maxBodyBytes));
    });
  }

  listen(host: string, port: number): Promise<number> {
    return new Promise((resolve, reject) => {
      // Exclusive: without it uWS shares a busy port (SO_REUSEPORT) and splits requests at random.
      listenExclusive(this.app, host, port, (listenSocket) => {
        if (listenSocket === false) {
          reject(new ListenError(host, port));
          return;
        }
        this.listenSocket = listenSocket;
        resolve(uWS.us_socket_local_port(listenSocket));
      });
    });
  }

  stopListening(): void {
    if (this.listenSocket === undefined) return;
    uWS.us_listen_socket_close(this.listenSocket);
    this.listenSocket = undefined;
  }
}

type ListenCallback = (listenSocket: uWS.us_listen_socket | false) => void;

/** uWS takes (host, port, options, callback); its type declarations lack that overload and the constant. */
function listenExclusive(app: uWS.TemplatedApp, host: string, port: number, callback: ListenCallback): void {
  const listen = app.listen as unknown as (h: string, p: number, o: number, c: ListenCallback) => void;
  const { LIBUS_LISTEN_EXCLUSIVE_PORT } = uWS as unknown as { LIBUS_LISTEN_EXCLUSIVE_PORT: number };
  listen.call(app, host, port, LIBUS_LISTEN_EXCLUSIVE_PORT, callback);
}

const SEND_STATUS: readonly SendStatus[] = ['buffered', 'sent', 'dropped'];

class UwsSocket<A> implements SocketHandle<A> {
  private isClosed = false;
  readonly remoteAddress: string;
  readonly attachment: A;

  constructor(private readonly ws: WebSocket<UserData<A>>) {
    this.remoteAddress = ws.getUserData().remoteAddress;
    this.attachment = ws.getUserData().attachment;
  }

  get closed(): boolean {
    return this.isClosed;
  }

  send(text: string): SendStatus {
    if (this.isClosed) return 'closed';
    return SEND_STATUS[this.ws.send(text, false)] ?? 'dropped';
  }

  bufferedBytes(): number {
    return this.isClosed ? 0 : this.ws.getBufferedAmount();
  }

  close(code: number, reason: string): void {
    if (this.isClosed) return;
    this.ws.end(code, reason);
  }

  markClosed(): void {
    this.isClosed = true;
  }
}

/**
 * uWS responses must be corked, and are invalid once aborted: both handled here. uWS drops body
 * data that arrives before a data handler is set, and handlers may wait (on the store) before
 * reading the body, so the body is collected from the start, up to `maxBodyBytes`.
 */
class UwsHttpResponse implements HttpResponse {
  private isAborted = false;
  private finished = false;
  private backlog = 0;
  private abortHandlers: Array<() => void> = [];
  private bodyChunks: Buffer[] = [];
  private bodyBytes = 0;
  private bodyComplete = false;
  private bodyWaiter: (() => void) | undefined;
  private closeAfterEnd = false;

  constructor(
    private readonly res: UwsResponse,
    private readonly maxBodyBytes: number,
  ) {
    res.onAborted(() => {
      this.isAborted = true;
      this.finished = true;
      for (const handler of this.abortHandlers) handler();
    });
    res.onData((chunk, isLast) => {
      this.bodyBytes += chunk.byteLength;
      // The chunk's memory is reused after this callback: copy it. Past the bound, only count.
      if (this.bodyBytes <= this.maxBodyBytes) this.bodyChunks.push(Buffer.from(new Uint8Array(chunk)));
      if (isLast) this.bodyComplete = true;
      if (isLast || this.bodyBytes > this.maxBodyBytes) this.bodyWaiter?.();
    });
  }

  get aborted(): boolean {
    return this.isAborted;
  }

  onAborted(handler: () => void): void {
    this.abortHandlers.push(handler);
  }

  readBody(maxBytes: number): Promise<Buffer> {
    const limit = Math.min(maxBytes, this.maxBodyBytes);
    return readWithDeadline(
      (resolve, reject) => {
        const settle = () => {
          if (this.bodyBytes > limit) {
            this.bodyWaiter = undefined;
            reject(new PayloadTooLargeError(`Request body is larger than ${limit} bytes`));
          } else if (this.bodyComplete) {
            this.bodyWaiter = undefined;
            resolve(Buffer.concat(this.bodyChunks));
          }
        };
        this.bodyWaiter = settle;
        settle();
      },
      () => {
        // The answer (408) still goes out; then the connection closes.
        this.bodyWaiter = undefined;
        this.closeAfterEnd = true;
      },
    );
  }

  writeHead(status: number, headers: Readonly<Record<string, string>>): void {
    if (this.finished) return;
    this.res.cork(() => {
      this.res.writeStatus(statusLine(status));
      for (const [name, value] of Object.entries(headers)) this.res.writeHeader(name, value);
    });
  }

  write(chunk: string): boolean {
    if (this.finished) return false;
    let ok = false;
    this.res.cork(() => {
      ok = this.res.write(chunk);
    });
    if (!ok) {
      // uWS keeps what the socket did not take; count it until the socket is writable again.
      if (this.backlog === 0) {
        this.res.onWritable(() => {
          this.backlog = 0;
          return true;
        });
      }
      this.backlog += Buffer.byteLength(chunk);
    }
    return ok;
  }

  get backlogBytes(): number {
    return this.backlog;
  }

  end(body?: string | Buffer): void {
    if (this.finished) return;
    this.finished = true;
    this.res.cork(() => {
      this.res.end(body, this.closeAfterEnd);
    });
  }
}
