import { setTimeout as delay } from 'node:timers/promises';
import { WS_PATH } from '../protocol/index.js';
import { ApiKeys } from './auth/ApiKeys.js';
import type { Identity } from './auth/Identity.js';
import { TicketStore } from './auth/TicketStore.js';
import type { Config } from './config.js';
import type { Engine } from './engine/Engine.js';
import { LlamaEngine } from './engine/LlamaEngine.js';
import { locateModel } from './engine/locateModel.js';
import { Gateway } from './gateway/Gateway.js';
import { createHttpRoutes, type ServerState } from './http/HttpRoutes.js';
import { RateLimiter } from './limits/RateLimiter.js';
import type { Logger } from './log.js';
import { Metrics } from './observability/Metrics.js';
import { reportGeneration } from './observability/reportGeneration.js';
import type { ServerContext } from './ServerContext.js';
import { resolveQueuePolicy } from './scheduler/policies/resolveQueuePolicy.js';
import { Scheduler } from './scheduler/Scheduler.js';
import { SessionStore } from './sessions/SessionStore.js';
import { UwsTransport } from './transport/uwsTransport.js';
import { WsTransport } from './transport/wsTransport.js';

/** How long past the grace period a stop waits for cancelled generations to return before it goes on. */
const STOP_DEADLINE_MS = 5_000;

export type RunningServer = {
  /** The bound port (useful with port 0). */
  port: number;
  /** Settles when the model is loaded (or failed to load). */
  ready: Promise<void>;
  state(): ServerState;
  /** Graceful stop: notify clients, let running generations finish within the grace period. */
  stop(): Promise<void>;
};

/**
 * Listens at once (so /healthz and /readyz answer while the model loads), then loads the model
 * and opens the WebSocket endpoint.
 */
export async function startServer(config: Config, log: Logger): Promise<RunningServer> {
  let state: ServerState = 'loading';
  let engine: Engine | undefined;
  let scheduler: Scheduler | undefined;
  let context: ServerContext | undefined;
  const keys = ApiKeys.load(config.apiKeys, config.apiKeysFile);
  keys.assertSafeToListen(config.host);
  const tickets = new TicketStore(config.ticketTtlMs);
  const limiter = new RateLimiter({
    connections: config.maxConnectionsPerKey,
    resumesPerMinute: config.resumesPerMinute,
    concurrent: config.maxConcurrentPerKey,
    requestsPerMinute: config.requestsPerMinute,
    tokensPerMinute: config.tokensPerMinute,
  });
  const access = { keys, tickets, allowedOrigins: config.allowedOrigins };
  const gateway = new Gateway(access, limiter);
  const http = createHttpRoutes({
    staticDir: config.staticDir,
    access,
    log,
    state: () => state,
    context: () => context,
  });
  const Transport = config.transport === 'ws' ? WsTransport : UwsTransport;
  const transport = new Transport<Identity>(
    {
      wsPath: WS_PATH,
      hardMaxFrameBytes: config.maxFrameBytes * 4,
      // Twice ours: the gateway closes a slow client with 4429 before the socket layer would.
      maxBackpressureBytes: config.maxBackpressureBytes * 2,
      idleTimeoutSec: config.idleTimeoutSec,
    },
    gateway,
    http,
  );
  const port = await transport.listen(config.host, config.port);
  log.info({ host: config.host, port, transport: config.transport }, 'listening');
  if (!keys.enabled) {
    log.warn(
      { host: config.host },
      'NO API KEYS CONFIGURED: the server is open to anyone who can reach it (loopback only). Set API_KEYS or API_KEYS_FILE.',
    );
  }

  const ready = (async () => {
    const modelPath = await locateModel(config);
    const loaded = await LlamaEngine.load({
      modelPath,
      gpu: config.gpu,
      threads: config.threads,
      contextSize: config.contextSize,
      sequences: config.maxConcurrent,
    });
    engine = loaded;
    const sessions = new SessionStore({
      maxSessions: config.maxSessions,
      ttlMs: config.sessionTtlMs,
      maxSessionsPerKey: config.maxSessionsPerKey,
      maxSessionChars: config.maxSessionChars,
      maxCharsPerKey: config.maxHistoryCharsPerKey,
    });
    const metrics = new Metrics({
      connections: () => gateway.connectionCount,
      sessions: () => sessions.size,
      running: () => scheduler?.runningCount ?? 0,
      waiting: () => scheduler?.queuedCount ?? 0,
    });
    scheduler = new Scheduler(loaded, {
      maxQueued: config.maxQueued,
      maxQueuedPerClient: config.maxQueuedPerClient,
      maxGenerationMs: config.maxGenerationMs,
      keepFinishedMs: Math.max(60_000, config.resumeGraceMs),
      policy: resolveQueuePolicy(config.queuePolicy),
      onSubmit: (generation) => reportGeneration(generation, metrics, log),
    });
    context = { config, engineInfo: loaded.info, sessions, scheduler, limiter, metrics, log };
    gateway.setReady(context);
    if (state === 'loading') state = 'ready';
    log.info({ model: loaded.info }, 'model loaded; ready');
  })();
  ready.catch(() => {
    state = 'failed';
  });

  let stopping: Promise<void> | undefined;
  const stop = () => {
    stopping ??= (async () => {
      // The listener stays open through the grace period, so that a load balancer's new
      // connections get 503 shutting_down (and /readyz says so) instead of being refused.
      state = 'shutting_down';
      gateway.announceShutdown(config.shutdownGraceMs);
      await ready.catch(() => undefined);
      const drained = scheduler?.drain(config.shutdownGraceMs);
      await Promise.race([drained, delay(config.shutdownGraceMs + STOP_DEADLINE_MS, undefined, { ref: false })]);
      transport.stopListening();
      gateway.closeAll();
      await engine?.dispose();
      log.info('stopped');
    })();
    return stopping;
  };

  return { port, ready, state: () => state, stop };
}
