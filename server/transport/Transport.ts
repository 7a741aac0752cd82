import { errorBody, HTTP_STATUS, type Refusal } from '../../protocol/index.js';

/**
 * The one seam between the server and a socket library. Only files in server/transport/ import
 * uWebSockets.js or ws; everything above speaks these types.
 */

export type SendStatus = 'sent' | 'buffered' | 'dropped' | 'closed';

/** A connected socket; `attachment` is what the upgrade decision attached to it. */
export interface SocketHandle<A = unknown> {
  readonly remoteAddress: string;
  readonly attachment: A;
  /** Queues one text frame; 'buffered' means it waits behind backpressure. */
  send(text: string): SendStatus;
  /** Bytes waiting to be written to the client. */
  bufferedBytes(): number;
  close(code: number, reason: string): void;
  readonly closed: boolean;
}

export type UpgradeRequest = {
  path: string;
  headers: Readonly<Record<string, string>>;
  /** Subprotocols the client offered, in its order. */
  offeredProtocols: readonly string[];
  remoteAddress: string;
};

export type UpgradeDecision<A> =
  | { accept: true; protocol: string; attachment: A }
  | { accept: false; refusal: Refusal };

export interface SocketHandlers<A> {
  /** May decide later (a ticket is redeemed in the store); the transport holds the request meanwhile. */
  upgrade(request: UpgradeRequest): UpgradeDecision<A> | Promise<UpgradeDecision<A>>;
  /** The client went away while an accepted upgrade was being decided: undo what accepting took. */
  upgradeAbandoned(attachment: A): void;
  open(socket: SocketHandle<A>): void;
  /** `text` is null for a binary frame; `bytes` is the frame's payload size. */
  message(socket: SocketHandle<A>, text: string | null, bytes: number): void;
  drain(socket: SocketHandle<A>): void;
  close(socket: SocketHandle<A>, code: number, reason: string): void;
}

export type HttpRequest = {
  method: string;
  path: string;
  query: string;
  headers: Readonly<Record<string, string>>;
};

export interface HttpResponse {
  /** True once the client went away; writes after that are ignored. */
  readonly aborted: boolean;
  onAborted(handler: () => void): void;
  /**
   * Reads the whole request body; rejects past `maxBytes` with a PayloadTooLargeError, and with a
   * RequestTimeoutError when it has not all arrived within BODY_DEADLINE_MS (a trickling client).
   */
  readBody(maxBytes: number): Promise<Buffer>;
  writeHead(status: number, headers: Readonly<Record<string, string>>): void;
  /** Writes part of a streamed body; false means the client is reading slowly. */
  write(chunk: string): boolean;
  /** Bytes of the streamed body written but not yet taken by the client (roughly). */
  readonly backlogBytes: number;
  end(body?: string | Buffer): void;
}

export type HttpHandler = (request: HttpRequest, response: HttpResponse) => void;

export type TransportOptions = {
  wsPath: string;
  /**
   * Frames up to this size reach the handlers, which close politely above their own limit;
   * bigger ones are cut off by the socket library without a close frame.
   */
  hardMaxFrameBytes: number;
  /** HTTP request bodies are collected up to this size (larger ones are refused when read). */
  maxBodyBytes: number;
  maxBackpressureBytes: number;
  idleTimeoutSec: number;
};

export interface Transport {
  /** Starts listening; resolves to the bound port. */
  listen(host: string, port: number): Promise<number>;
  /** Stops accepting connections; open ones stay until closed. */
  stopListening(): void;
}

/** How long a request's headers (ws transport) and body (both) may take to arrive, as uWebSockets.js allows. */
export const REQUEST_DEADLINE_MS = 10_000;

export class RequestTimeoutError extends Error {
  override name = 'RequestTimeoutError';
  constructor() {
    super(`The request did not arrive within ${REQUEST_DEADLINE_MS / 1000} s`);
  }
}

/** A body read that gives up after REQUEST_DEADLINE_MS; `stop` ends the read the transport's way. */
export function readWithDeadline(
  read: (resolve: (body: Buffer) => void, reject: (error: Error) => void) => void,
  stop: () => void,
): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      stop();
      reject(new RequestTimeoutError());
    }, REQUEST_DEADLINE_MS);
    read(
      (body) => {
        clearTimeout(timer);
        resolve(body);
      },
      (error) => {
        clearTimeout(timer);
        reject(error);
      },
    );
  });
}

/** The address could not be bound: most often another process already listens on the port. */
export class ListenError extends Error {
  override name = 'ListenError';
  constructor(host: string, port: number, why = 'it is in use by another process, or not available') {
    super(`Cannot listen on ${host}:${port}: ${why}. Stop the other process or choose another --port (PORT).`);
  }
}

export class PayloadTooLargeError extends Error {
  override name = 'PayloadTooLargeError';
}

const STATUS_TEXT: Readonly<Record<number, string>> = {
  200: 'OK',
  400: 'Bad Request',
  401: 'Unauthorized',
  403: 'Forbidden',
  404: 'Not Found',
  405: 'Method Not Allowed',
  408: 'Request Timeout',
  409: 'Conflict',
  413: 'Payload Too Large',
  426: 'Upgrade Required',
  429: 'Too Many Requests',
  500: 'Internal Server Error',
  503: 'Service Unavailable',
};

/** The HTTP status line's tail: `404 Not Found`. */
export function statusLine(status: number): string {
  return `${status} ${STATUS_TEXT[status] ?? ''}`.trim();
}

/** A refused upgrade as an HTTP answer: its status and plain JSON body. */
export function refusedUpgrade(refusal: Refusal): { status: string; body: string } {
  return { status: statusLine(HTTP_STATUS[refusal.code]), body: JSON.stringify(errorBody(refusal)) };
}

/** Splits a Sec-WebSocket-Protocol header into its entries. */
export function parseProtocolHeader(header: string): string[] {
  return header
    .split(',')
    .map((entry) => entry.trim())
    .filter((entry) => entry !== '');
}
