import type http from 'node:http';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';

const SPARE = Symbol('opened ahead of its request');

/** Whether a request went out on a spare connection, which the upstream may have closed since it was opened. */
export function wentOutOnSpare(request: http.ClientRequest): boolean {
  return (request.socket as (Socket & { [SPARE]?: true }) | null)?.[SPARE] === true;
}

/**
 * Keeps one connection to the upstream open ahead of the request that will need it. The agent's
 * kept-alive connections are used first; when none is free (every one busy, or, with llama-server,
 * closed after each streamed answer) the next request takes the spare instead of waiting for a
 * connect (and, over https, a TLS handshake), and a new spare is opened once it is on its way. A
 * spare the upstream closes while idle is dropped, not replaced: after a quiet spell the first
 * request connects as usual.
 */
export class SpareConnection {
  private spare: Duplex | undefined;
  private connectOptions: http.ClientRequestArgs | undefined;
  private opening = false;
  private disposed = false;

  constructor(agent: http.Agent) {
    const connect = agent.createConnection.bind(agent);
    agent.createConnection = (options, callback) => {
      this.connectOptions = options;
      const spare = this.take();
      this.openSoon(connect);
      return spare ?? connect(options, callback);
    };
  }

  dispose(): void {
    this.disposed = true;
    this.spare?.destroy();
    this.spare = undefined;
  }

  private take(): Duplex | undefined {
    const spare = this.spare;
    this.spare = undefined;
    const state = (spare as Socket | undefined)?.readyState;
    if (spare === undefined || spare.destroyed || (state !== 'open' && state !== 'opening')) return undefined;
    spare.removeAllListeners('error');
    return spare;
  }

  /** On the next turn, so that opening it never delays the request that is going out now. */
  private openSoon(connect: http.Agent['createConnection']): void {
    if (this.opening) return;
    this.opening = true;
    setImmediate(() => {
      this.opening = false;
      const options = this.connectOptions;
      if (this.disposed || this.spare !== undefined || options === undefined) return;
      const socket = connect(options);
      if (socket === null || socket === undefined) return;
      Object.assign(socket, { [SPARE]: true });
      // Until a request takes it, a failure only means there is no spare.
      socket.on('error', () => socket.destroy());
      socket.once('close', () => {
        if (this.spare === socket) this.spare = undefined;
      });
      this.spare = socket;
    });
  }
}
