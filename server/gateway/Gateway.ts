import { nanoid } from 'nanoid';
import {
  type ClientFrame,
  CloseCodes,
  decodeClientFrame,
  PROTOCOL_VERSION,
  type Refusal,
  SUPPORTED_SUBPROTOCOLS,
  TOOL_LIMITS,
} from '../../protocol/index.js';
import { type Access, authenticate, isRefusal } from '../auth/authenticate.js';
import type { Identity } from '../auth/Identity.js';
import { TICKET_PREFIX } from '../auth/TicketStore.js';
import type { RateLimiter } from '../limits/RateLimiter.js';
import { maxTokensAllowed, type ServerContext } from '../ServerContext.js';
import { SERVER_NAME, SERVER_VERSION } from '../serverInfo.js';
import { StoreUnavailable } from '../store/Store.js';
import { storeRefusal } from '../store/storeRefusal.js';
import type { SocketHandle, SocketHandlers, UpgradeDecision, UpgradeRequest } from '../transport/Transport.js';
import { Connection } from './Connection.js';
import { Followers } from './Followers.js';
import { cancelGeneration } from './handlers/cancelGeneration.js';
import { closeSession } from './handlers/closeSession.js';
import { openSession } from './handlers/openSession.js';
import { receiveToolResult } from './handlers/receiveToolResult.js';
import { resumeGeneration } from './handlers/resumeGeneration.js';
import { sendChat } from './handlers/sendChat.js';

/**
 * Everything a connection does between the socket and the scheduler: handshake, decoding,
 * dispatch and clean-up. Transports call it through SocketHandlers.
 */
export class Gateway implements SocketHandlers<Identity> {
  private readonly connections = new Map<SocketHandle<Identity>, Connection>();
  private ctx: ServerContext | undefined;
  private followers: Followers | undefined;
  private shuttingDown = false;

  constructor(
    private readonly access: Access,
    private readonly limiter: RateLimiter,
  ) {}

  get connectionCount(): number {
    return this.connections.size;
  }

  /** Called once the model is loaded; before it, upgrades get 503 not_ready. */
  setReady(ctx: ServerContext): void {
    this.ctx = ctx;
    this.followers = new Followers(ctx.config.resumeGraceMs, (genId) => ctx.scheduler.cancel(genId, 'abandoned'));
  }

  async upgrade(request: UpgradeRequest): Promise<UpgradeDecision<Identity>> {
    if (this.shuttingDown) return refuse({ code: 'shutting_down', message: 'The server is shutting down' });
    if (this.ctx === undefined) {
      return refuse({ code: 'not_ready', message: 'The model is still loading; retry shortly', retryAfterMs: 1000 });
    }
    const protocol = request.offeredProtocols.find((offered) => SUPPORTED_SUBPROTOCOLS.includes(offered));
    if (protocol === undefined) {
      // Never echo a ticket: it is a secret.
      const offered = request.offeredProtocols.filter((entry) => !entry.startsWith(TICKET_PREFIX)).join(', ') || 'none';
      const message = `Offer the WebSocket subprotocol "${PROTOCOL_VERSION}" (offered: ${offered.slice(0, 200)})`;
      return refuse({ code: 'unsupported_version', message });
    }
    let identity: Identity | Refusal;
    try {
      identity = await authenticate(request, this.access, `conn:${nanoid(12)}`);
    } catch (error) {
      if (error instanceof StoreUnavailable) return refuse(storeRefusal(error));
      throw error;
    }
    if (isRefusal(identity)) return refuse(identity);
    const refusal = this.limiter.admitConnection(identity.clientKey);
    if (refusal !== undefined) return refuse(refusal);
    return { accept: true, protocol, attachment: identity };
  }

  upgradeAbandoned(identity: Identity): void {
    this.limiter.releaseConnection(identity.clientKey);
  }

  open(socket: SocketHandle<Identity>): void {
    const ctx = this.ctx;
    if (ctx === undefined) {
      this.limiter.releaseConnection(socket.attachment.clientKey);
      socket.close(CloseCodes.InternalError.code, 'Not ready');
      return;
    }
    const connection = new Connection(`c_${nanoid(12)}`, socket, socket.attachment, {
      coalesceAboveBytes: ctx.config.coalesceAboveBytes,
      maxBufferedBytes: ctx.config.maxBackpressureBytes,
      onError: (code) => ctx.metrics.countError(code),
      followers: this.followers,
      afterDone: async ({ identity }) => {
        const sessions = { used: await ctx.sessions.countOf(identity.ownerKey), limit: ctx.config.maxSessionsPerKey };
        return { type: 'rate_limits', limits: await ctx.limiter.snapshot(identity.clientKey, sessions) };
      },
    });
    this.connections.set(socket, connection);
    const { keyName } = connection.identity;
    ctx.log.info({ connectionId: connection.id, keyName, remoteAddress: socket.remoteAddress }, 'connection open');
    connection.send({
      type: 'welcome',
      protocol: PROTOCOL_VERSION,
      server: { name: SERVER_NAME, version: SERVER_VERSION },
      model: {
        name: ctx.engineInfo.modelName,
        contextSize: ctx.engineInfo.contextSize,
        reasoning: ctx.engineInfo.reasoning,
        binary: ctx.engineInfo.binary,
      },
      limits: {
        maxFrameBytes: ctx.config.maxFrameBytes,
        maxMessageChars: ctx.config.maxMessageChars,
        maxSessionsPerConnection: ctx.config.maxSessionsPerConnection,
        maxTokens: maxTokensAllowed(ctx),
        maxQueued: ctx.config.maxQueued,
        tools: { ...TOOL_LIMITS },
      },
      connectionId: connection.id,
    });
  }

  message(socket: SocketHandle<Identity>, text: string | null, bytes: number): void {
    const connection = this.connections.get(socket);
    const ctx = this.ctx;
    if (connection === undefined || ctx === undefined) return;
    if (bytes > ctx.config.maxFrameBytes) {
      connection.close(CloseCodes.MessageTooBig);
      return;
    }
    if (text === null) {
      this.rejectFrame(ctx, connection, 'bad_frame', 'Binary frames are not supported; send JSON text frames');
      return;
    }
    const decoded = decodeClientFrame(text);
    if (!decoded.ok) {
      this.rejectFrame(ctx, connection, decoded.code, decoded.message, decoded.id);
      return;
    }
    const { frame } = decoded;
    // One frame at a time per connection, in the order sent, though handlers wait on the store.
    connection.serially(async () => {
      try {
        await this.dispatch(ctx, connection, frame);
      } catch (error) {
        if (error instanceof StoreUnavailable) {
          connection.refuse(storeRefusal(error), frame.id);
          return;
        }
        ctx.log.error({ err: error, connectionId: connection.id, frameType: frame.type }, 'frame handler failed');
        connection.sendError('internal', 'Internal error while handling the frame', { id: frame.id });
      }
    });
  }

  drain(socket: SocketHandle<Identity>): void {
    this.connections.get(socket)?.flush();
  }

  close(socket: SocketHandle<Identity>, code: number, _reason: string): void {
    const connection = this.connections.get(socket);
    if (connection === undefined) return;
    this.connections.delete(socket);
    this.limiter.releaseConnection(connection.identity.clientKey);
    // In open mode the budget was this connection's own; with keys it is the key's, and stays.
    if (connection.identity.keyName === undefined) this.limiter.forget(connection.identity.clientKey);
    const ctx = this.ctx;
    if (ctx === undefined) return;
    const orphans = connection.detach();
    // A client closed for reading too slowly gets no grace: its generations stop at once.
    if (connection.tooSlow) for (const genId of orphans) ctx.scheduler.cancel(genId);
    ctx.log.info({ connectionId: connection.id, code, orphans: orphans.length }, 'connection closed');
  }

  /** Tells every client the server is stopping and stops accepting new connections. */
  announceShutdown(graceMs: number): void {
    this.shuttingDown = true;
    for (const connection of this.connections.values()) {
      connection.send({ type: 'server.notice', kind: 'shutdown', graceMs });
    }
  }

  closeAll(): void {
    for (const connection of [...this.connections.values()]) connection.close(CloseCodes.ShuttingDown);
  }

  private async dispatch(ctx: ServerContext, connection: Connection, frame: ClientFrame): Promise<void> {
    switch (frame.type) {
      case 'session.open':
        return openSession(ctx, connection, frame);
      case 'session.close':
        return closeSession(ctx, connection, frame);
      case 'chat.send':
        return sendChat(ctx, connection, frame);
      case 'generation.cancel':
        return cancelGeneration(ctx, connection, frame);
      case 'generation.resume':
        return resumeGeneration(ctx, connection, frame);
      case 'tool.result':
        return receiveToolResult(ctx, connection, frame);
      case 'ping':
        connection.send({ type: 'pong', id: frame.id });
        return;
      default:
        frame satisfies never;
    }
  }

  private rejectFrame(
    ctx: ServerContext,
    connection: Connection,
    code: 'bad_json' | 'bad_frame' | 'unknown_type',
    message: string,
    id?: string,
  ): void {
    connection.sendError(code, message, id === undefined ? {} : { id });
    if (connection.recordBadFrame(Date.now(), ctx.config.maxBadFrames, ctx.config.badFrameWindowMs)) {
      ctx.log.warn({ connectionId: connection.id }, 'closing a connection that sent too many bad frames');
      connection.close(CloseCodes.PolicyViolation);
    }
  }
}

function refuse(refusal: Refusal): UpgradeDecision<Identity> {
  return { accept: false, refusal };
}
