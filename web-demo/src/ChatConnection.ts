import type { ClientFrame } from '../../protocol/clientFrames.js';
import type { ServerFrame } from '../../protocol/serverFrames.js';
import { PROTOCOL_VERSION } from '../../protocol/version.js';

export type ConnectionState = 'connecting' | 'open' | 'reconnecting';

export type ConnectionHandlers = {
  onFrame: (frame: ServerFrame) => void;
  onState: (state: ConnectionState) => void;
};

const FIRST_RETRY_MS = 250;
const MAX_RETRY_MS = 5000;

/** One WebSocket to the server that comes back by itself, with growing, jittered waits. */
export class ChatConnection {
  private socket: WebSocket | undefined;
  private attempts = 0;
  private stopped = false;

  constructor(
    private readonly url: string,
    private readonly handlers: ConnectionHandlers,
  ) {}

  connect(): void {
    this.handlers.onState(this.attempts === 0 ? 'connecting' : 'reconnecting');
    const socket = new WebSocket(this.url, [PROTOCOL_VERSION]);
    this.socket = socket;
    socket.onopen = () => {
      this.attempts = 0;
      this.handlers.onState('open');
    };
    socket.onmessage = (event) => this.handlers.onFrame(JSON.parse(String(event.data)) as ServerFrame);
    socket.onclose = () => {
      if (this.stopped || this.socket !== socket) return;
      this.attempts += 1;
      this.handlers.onState('reconnecting');
      const wait = Math.min(MAX_RETRY_MS, FIRST_RETRY_MS * 2 ** (this.attempts - 1));
      setTimeout(() => this.connect(), wait * (0.75 + Math.random() * 0.5));
    };
  }

  /** Sends when connected; returns false when not (the caller waits for the next welcome). */
  send(frame: ClientFrame): boolean {
    if (this.socket?.readyState !== WebSocket.OPEN) return false;
    this.socket.send(JSON.stringify(frame));
    return true;
  }

  close(): void {
    this.stopped = true;
    this.socket?.close();
  }
}
