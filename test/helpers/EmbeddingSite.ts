import { once } from 'node:events';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

/**
 * Another website (another port is another origin) that embeds the widget: it serves `page` at `/`
 * and, as the README's backend example does, hands out chat tickets at POST /chat-ticket by asking
 * the chat server's POST /v1/tickets with its key. POST /no-ticket refuses, as a site would a
 * visitor who is not signed in.
 */
export class EmbeddingSite {
  page = '';
  /** Sent with the page (a Content-Security-Policy, say). */
  pageHeaders: Record<string, string> = {};
  /** Where tickets come from: the chat server's HTTP address and the site's API key. */
  tickets: { serverUrl: string; apiKey: string } | undefined;
  ticketRequests = 0;
  private readonly server = createServer((request, response) => void this.handle(request, response));

  static async start(): Promise<EmbeddingSite> {
    const site = new EmbeddingSite();
    site.server.listen(0, '127.0.0.1');
    await once(site.server, 'listening');
    return site;
  }

  get origin(): string {
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  async close(): Promise<void> {
    this.server.closeAllConnections();
    this.server.close();
    await once(this.server, 'close');
  }

  private async handle(request: IncomingMessage, response: ServerResponse): Promise<void> {
    if (request.method === 'GET' && request.url === '/') {
      response.writeHead(200, { 'content-type': 'text/html; charset=utf-8', ...this.pageHeaders }).end(this.page);
      return;
    }
    if (request.method === 'POST' && request.url === '/chat-ticket' && this.tickets !== undefined) {
      this.ticketRequests += 1;
      // Here a real site checks its own visitor's session first.
      const answer = await fetch(`${this.tickets.serverUrl}/v1/tickets`, {
        method: 'POST',
        headers: { authorization: `Bearer ${this.tickets.apiKey}` },
      });
      response.writeHead(answer.status, { 'content-type': 'application/json', 'cache-control': 'no-store' });
      response.end(await answer.text());
      return;
    }
    const status = request.url === '/no-ticket' ? 401 : 404;
    response.writeHead(status, { 'content-type': 'application/json' }).end('{"error":"not here"}');
  }
}
