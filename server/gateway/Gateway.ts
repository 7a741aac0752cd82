import { nanoid } from 'nanoid';
import {
  type ClientFrame,
  CloseCodes,
  decodeClientFrame,
  PROTOCOL_VERSION,
  type Refusal,
  SUPPORTED_SUBPROTOCOLS,
} from '../../protocol/index.js';
import { type Access, authenticate, isRefusal } from '../auth/authenticate.js';
import type { Identity } from '../auth/Identity.js';
import { TICKET_PREFIX } from '../auth/TicketStore.js';
import type { RateLimiter } from '../limits/RateLimiter.js';
import { maxTokensAllowed, type ServerContext } from '../ServerContext.js';
import { SERVER_NAME, SERVER_VERSION } from '../serverInfo.js';
import type { SocketHandle, SocketHandlers, UpgradeDecision, UpgradeRequest } from '../transport/Transport.js';
import { Connection } from './Connection.js';
import { Followers } from './Followers.js';
import { cancelGeneration } from './handlers/cancelGeneration.js';
import { closeSession } from './handlers/closeSession.js';
import { openSession } from './handlers/openSession.js';
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

  upgrade(request: UpgradeRequest): UpgradeDecision<Identity> {
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
    const identity = authenticate(request, this.access, `conn:${nanoid(12)}`);
    if (isRefusal(identity)) return refuse(identity);
    const refusal = this.limiter.admitConnection(identity.clientKey);
    if (refusal !== undefined) return refuse(refusal);
    return { accept: true, protocol, attachment: identity };
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
      afterDone: ({ identity }) => {
        const sessions = { used: ctx.sessions.countOf(identity.ownerKey), limit: ctx.config.maxSessionsPerKey };
        return { type: 'rate_limits', limits: ctx.limiter.snapshot(identity.clientKey, sessions) };
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
      },
      limits: {
        maxFrameBytes: ctx.config.maxFrameBytes,
        maxMessageChars: ctx.config.maxMessageChars,
        maxSessionsPerConnection: ctx.config.maxSessionsPerConnection,
        maxTokens: maxTokensAllowed(ctx),
        maxQueued: ctx.config.maxQueued,
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
    try {
      this.dispatch(ctx, connection, decoded.frame);
    } catch (error) {
      ctx.log.error({ err: error, connectionId: connection.id, frameType: decoded.frame.type }, 'frame handler failed');
      connection.sendError('internal', 'Internal error while handling the frame', { id: decoded.frame.id });
    }
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

  private dispatch(ctx: ServerContext, connection: Connection, frame: ClientFrame): void {
    switch (frame.type) {
      case 'session.open':
        openSession(ctx, connection, frame);
        break;
      case 'session.close':
        closeSession(ctx, connection, frame);
        break;
      case 'chat.send':
        sendChat(ctx, connection, frame);
        break;
      case 'generation.cancel':
        cancelGeneration(ctx, connection, frame);
        break;
      case 'generation.resume':
        resumeGeneration(ctx, connection, frame);
        break;
      case 'ping':
        connection.send({ type: 'pong', id: frame.id });
        break;
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
