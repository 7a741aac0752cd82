import { nanoid } from 'nanoid';
import {
  type ClientFrame,
  CloseCodes,
  decodeClientFrame,
  PROTOCOL_VERSION,
  SUPPORTED_SUBPROTOCOLS,
} from '../../protocol/index.js';
import { SERVER_NAME, SERVER_VERSION } from '../serverInfo.js';
import type { SocketHandle, SocketHandlers, UpgradeDecision, UpgradeRequest } from '../transport/Transport.js';
import { Connection } from './Connection.js';
import type { GatewayContext } from './GatewayContext.js';
import { cancelGeneration } from './handlers/cancelGeneration.js';
import { openSession } from './handlers/openSession.js';
import { resumeGeneration } from './handlers/resumeGeneration.js';
import { sendChat } from './handlers/sendChat.js';

/** Until API keys exist, sessions belong to everyone who holds their resume token. */
const ANONYMOUS_OWNER = 'anonymous';

/**
 * Everything a connection does between the socket and the scheduler: handshake, decoding,
 * dispatch and clean-up. Transports call it through SocketHandlers.
 */
export class Gateway implements SocketHandlers {
  private readonly connections = new Map<SocketHandle, Connection>();
  private ctx: GatewayContext | undefined;
  private shuttingDown = false;

  get connectionCount(): number {
    return this.connections.size;
  }

  /** Called once the model is loaded; before it, upgrades get 503 not_ready. */
  setReady(ctx: GatewayContext): void {
    this.ctx = ctx;
  }

  upgrade(request: UpgradeRequest): UpgradeDecision {
    if (this.shuttingDown) return refuse(503, 'shutting_down', 'The server is shutting down');
    if (this.ctx === undefined) return refuse(503, 'not_ready', 'The model is still loading; retry shortly');
    const protocol = request.offeredProtocols.find((offered) => SUPPORTED_SUBPROTOCOLS.includes(offered));
    if (protocol === undefined) {
      const offered = request.offeredProtocols.join(', ') || 'none';
      const message = `Offer the WebSocket subprotocol "${PROTOCOL_VERSION}" (offered: ${offered})`;
      return refuse(426, 'unsupported_version', message);
    }
    return { accept: true, protocol };
  }

  open(socket: SocketHandle): void {
    const ctx = this.ctx;
    if (ctx === undefined) {
      socket.close(CloseCodes.InternalError.code, 'Not ready');
      return;
    }
    const connection = new Connection(`c_${nanoid(12)}`, socket);
    this.connections.set(socket, connection);
    ctx.log.info({ connectionId: connection.id, remoteAddress: socket.remoteAddress }, 'connection open');
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
        maxTokens: ctx.config.maxTokens,
        maxQueued: ctx.config.maxQueued,
      },
      connectionId: connection.id,
    });
  }

  message(socket: SocketHandle, text: string | null, bytes: number): void {
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

  drain(_socket: SocketHandle): void {}

  close(socket: SocketHandle, code: number, _reason: string): void {
    const connection = this.connections.get(socket);
    if (connection === undefined) return;
    this.connections.delete(socket);
    const ctx = this.ctx;
    if (ctx === undefined) return;
    const orphans = connection.detach();
    for (const genId of orphans) this.orphan(ctx, genId);
    ctx.log.info({ connectionId: connection.id, code, orphans: orphans.length }, 'connection closed');
  }

  /**
   * A generation whose client left goes on for the resume grace period, buffered, in case the
   * client comes back; then, unless someone resumed it, it is cancelled and its sequence freed.
   */
  private orphan(ctx: GatewayContext, genId: string): void {
    const graceMs = ctx.config.resumeGraceMs;
    if (graceMs === 0) {
      ctx.scheduler.cancel(genId, 'abandoned');
      return;
    }
    const timer = setTimeout(() => {
      const followed = [...this.connections.values()].some((connection) => connection.isFollowing(genId));
      if (!followed) ctx.scheduler.cancel(genId, 'abandoned');
    }, graceMs);
    timer.unref();
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

  private dispatch(ctx: GatewayContext, connection: Connection, frame: ClientFrame): void {
    switch (frame.type) {
      case 'session.open':
        openSession(ctx, connection, frame, ANONYMOUS_OWNER);
        break;
      case 'chat.send':
        sendChat(ctx, connection, frame, connection.id);
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
    ctx: GatewayContext,
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

function refuse(status: number, code: string, message: string): UpgradeDecision {
  return { accept: false, status, body: { error: { code, message } } };
}
