import { setTimeout as delay } from 'node:timers/promises';
import { WS_PATH } from '../protocol/index.js';
import { ApiKeys } from './auth/ApiKeys.js';
import type { Identity } from './auth/Identity.js';
import { TicketStore } from './auth/TicketStore.js';
import { type Config, type ConfigInput, parseConfig } from './config.js';
import type { Engine } from './engine/Engine.js';
import { LlamaEngine } from './engine/LlamaEngine.js';
import { locateModel } from './engine/locateModel.js';
import { describePlan, engineMemory } from './engine/planModelMemory.js';
import { UpstreamPool } from './engine/upstream/UpstreamPool.js';
import { Gateway } from './gateway/Gateway.js';
import { createHttpRoutes, type ServerState } from './http/HttpRoutes.js';
import { RateLimiter } from './limits/RateLimiter.js';
import { createLogger, type Logger } from './log.js';
import { Metrics } from './observability/Metrics.js';
import { reportGeneration } from './observability/reportGeneration.js';
import type { ServerContext } from './ServerContext.js';
import { EmbeddingQueue } from './scheduler/EmbeddingQueue.js';
import { resolveQueuePolicy } from './scheduler/policies/resolveQueuePolicy.js';
import { Scheduler } from './scheduler/Scheduler.js';
import { SessionStore } from './sessions/SessionStore.js';
import { openStore } from './store/openStore.js';
import type { Store } from './store/Store.js';
import type { HttpHandler, SocketHandlers, Transport, TransportOptions } from './transport/Transport.js';
import { UwsTransport } from './transport/uwsTransport.js';
import { WsTransport } from './transport/wsTransport.js';

/** Makes the socket layer; the default follows `config.transport` (uWebSockets.js or ws). */
export type TransportFactory = (
  options: TransportOptions,
  sockets: SocketHandlers<Identity>,
  http: HttpHandler,
) => Transport;

export type ChatServerOptions = {
  /** Settings as flags and variables give them (see server/config.ts); defaults for the rest. */
  config?: ConfigInput;
  /**
   * A model to serve instead of loading `config.model`; the caller keeps ownership of it, and its
   * `info.sequences` (not `config.maxConcurrent`) sets how many generations run at once.
   */
  engine?: Engine;
  transport?: TransportFactory;
  /** Defaults to JSON lines on stdout at `config.logLevel`. */
  logger?: Logger;
  /** A store to keep conversations in instead of opening `config.store`; the caller keeps ownership of it. */
  store?: Store;
};

export type ServerAddress = { host: string; port: number };

export type ChatServer = {
  readonly config: Config;
  /**
   * Opens the store (rejecting with StoreOpenError when it cannot be used), binds the port
   * (refusing a busy one), then loads the model; /healthz and /readyz answer meanwhile.
   */
  listen(): Promise<ServerAddress>;
  /** Where it listens, once it does. */
  readonly address: ServerAddress | undefined;
  /** Settles when the model is loaded (or failed to load), after listen(). */
  readonly ready: Promise<void>;
  state(): ServerState;
  /** Graceful stop: notify clients, keep answering 503 while running generations finish within the grace period. */
  close(): Promise<void>;
};

/** How long past the grace period a stop waits for cancelled generations to return before it goes on. */
const STOP_DEADLINE_MS = 5_000;

/**
 * The whole server as a library: settings are checked and keys loaded at once (ConfigError when
 * they are wrong), nothing listens until listen().
 */
export function createChatServer(options: ChatServerOptions = {}): ChatServer {
  const config = parseConfig(options.config ?? {});
  const log = options.logger ?? createLogger(config.logLevel);
  const keys = ApiKeys.load(config.apiKeys, config.apiKeysFile);
  keys.assertSafeToListen(config.host);
  let state: ServerState = 'loading';
  let scheduler: Scheduler | undefined;
  let context: ServerContext | undefined;
  let store: Store | undefined;
  let transport: Transport | undefined;
  let gateway: Gateway | undefined;

  /** Everything that needs the store, made once it is open. */
  const build = (opened: Store) => {
    const access = {
      keys,
      tickets: new TicketStore(opened, config.ticketTtlMs),
      allowedOrigins: config.allowedOrigins,
    };
    const limits = {
      connections: config.maxConnectionsPerKey,
      resumesPerMinute: config.resumesPerMinute,
      concurrent: config.maxConcurrentPerKey,
      requestsPerMinute: config.requestsPerMinute,
      tokensPerMinute: config.tokensPerMinute,
    };
    const limiter = new RateLimiter(limits, opened.budgets);
    const madeGateway = new Gateway(access, limiter);
    const http = createHttpRoutes({
      staticDir: config.staticDir,
      access,
      log,
      state: () => state,
      context: () => context,
      storeUnavailable: () => opened.unavailableReason(),
    });
    const makeTransport = options.transport ?? defaultTransport(config);
    const madeTransport = makeTransport(
      {
        wsPath: WS_PATH,
        hardMaxFrameBytes: config.maxFrameBytes * 4,
        maxBodyBytes: config.maxBodyBytes,
        // Twice ours: the gateway closes a slow client with 4429 before the socket layer would.
        maxBackpressureBytes: config.maxBackpressureBytes * 2,
        idleTimeoutSec: config.idleTimeoutSec,
      },
      madeGateway,
      http,
    );
    return { limiter, gateway: madeGateway, transport: madeTransport };
  };

  const ownEngine = options.engine === undefined;
  const ownStore = options.store === undefined;
  let engine = options.engine;
  const start = async (wiring: Omit<Wiring, 'log' | 'scheduler'>) => {
    engine ??= await loadEngine(config, log);
    context = serve(config, engine, { ...wiring, log, scheduler: (made) => (scheduler = made) });
    wiring.gateway.setReady(context);
    if (state === 'loading') state = 'ready';
    log.info({ model: engine.info }, 'model loaded; ready');
    if (address !== undefined) {
      // Where a person starts: the demo page (a wildcard host is reached through loopback).
      const host = ['0.0.0.0', '::'].includes(address.host) ? '127.0.0.1' : address.host;
      const url = `http://${host.includes(':') ? `[${host}]` : host}:${address.port}/`;
      log.info({ url }, `open ${url} in a browser, or connect to ws://${url.slice('http://'.length)}v1/ws`);
    }
  };
  let wiring: Omit<Wiring, 'log' | 'scheduler'> | undefined;
  const readiness = deferred(() => start(wiring as Omit<Wiring, 'log' | 'scheduler'>));
  readiness.promise.catch(() => {
    state = 'failed';
  });

  let address: ServerAddress | undefined;
  let stopping: Promise<void> | undefined;
  return {
    config,
    get address() {
      return address;
    },
    get ready() {
      return readiness.promise;
    },
    state: () => state,
    async listen() {
      store = options.store ?? (await openStore(config.store, { maxSessions: config.maxSessions }));
      log.info({ store: store.kind, location: store.location }, 'store open');
      const built = build(store);
      ({ transport, gateway } = built);
      wiring = { gateway: built.gateway, limiter: built.limiter, store };
      const port = await built.transport.listen(config.host, config.port);
      address = { host: config.host, port };
      log.info({ host: config.host, port, transport: config.transport }, 'listening');
      if (!keys.enabled) {
        const warning = 'NO API KEYS CONFIGURED: the server is open to anyone who can reach it (loopback only).';
        log.warn({ host: config.host }, `${warning} Set API_KEYS or API_KEYS_FILE.`);
      }
      readiness.begin();
      return address;
    },
    close() {
      stopping ??= (async () => {
        // The listener stays open through the grace period, so that a load balancer's new
        // connections get 503 shutting_down (and /readyz says so) instead of being refused.
        state = 'shutting_down';
        gateway?.announceShutdown(config.shutdownGraceMs);
        if (address !== undefined) await readiness.promise.catch(() => undefined);
        const drained = scheduler?.drain(config.shutdownGraceMs);
        await Promise.race([drained, delay(config.shutdownGraceMs + STOP_DEADLINE_MS, undefined, { ref: false })]);
        transport?.stopListening();
        gateway?.closeAll();
        if (ownEngine) await engine?.dispose();
        // Turns that ended in the drain are written by now; the store closes last.
        if (ownStore) await store?.close();
        log.info('stopped');
      })();
      return stopping;
    },
  };
}

function defaultTransport(config: Config): TransportFactory {
  return (options, sockets, http) =>
    config.transport === 'ws' ? new WsTransport(options, sockets, http) : new UwsTransport(options, sockets, http);
}

async function loadEngine(config: Config, log: Logger): Promise<Engine> {
  if (config.upstream.length > 0) {
    const upstreams = config.upstream.map((setting) => setting.url);
    const unused =
      '--model, --model-path, --max-concurrent, --gpu, --threads and --context-size (unless an upstream does not say) do not apply';
    log.info({ upstreams }, `upstream engines: no local model is loaded; ${unused}`);
    return UpstreamPool.connect({
      upstreams: config.upstream,
      healthIntervalMs: config.upstreamHealthIntervalMs,
      idleTimeoutMs: config.upstreamIdleTimeoutMs,
      cancelWaitMs: config.upstreamCancelWaitMs,
      startTimeoutMs: config.upstreamStartTimeoutMs,
      contextSize: config.contextSize,
      log,
    });
  }
  return LlamaEngine.load({
    modelPath: await locateModel(config, log),
    gpu: config.gpu,
    threads: config.threads,
    contextSize: config.contextSize,
    sequences: config.maxConcurrent,
    memoryLimitBytes: config.memoryLimit,
    onMemoryPlan: (plan) => log.info({ memory: engineMemory(plan) }, describePlan(plan)),
  });
}

type Wiring = {
  gateway: Gateway;
  limiter: RateLimiter;
  store: Store;
  log: Logger;
  /** Hands the scheduler back, for the gauges and the drain. */
  scheduler: (scheduler: Scheduler) => void;
};

/** Sessions, metrics and the scheduler around a loaded engine: what request handlers use. */
function serve(
  config: Config,
  engine: Engine,
  { gateway, limiter, store, log, scheduler: made }: Wiring,
): ServerContext {
  let scheduler: Scheduler | undefined;
  const keepFinishedMs = Math.max(60_000, config.resumeGraceMs);
  const sessions = new SessionStore(
    store,
    {
      maxSessions: config.maxSessions,
      ttlMs: config.sessionTtlMs,
      maxSessionsPerKey: config.maxSessionsPerKey,
      maxSessionChars: config.maxSessionChars,
      maxCharsPerKey: config.maxHistoryCharsPerKey,
      transcriptTtlMs: keepFinishedMs,
    },
    (genId) => {
      const generation = scheduler?.get(genId);
      return generation !== undefined && generation.outcome === undefined;
    },
  );
  const metrics = new Metrics({
    connections: () => gateway.connectionCount,
    sessions: () => sessions.size,
    running: () => scheduler?.runningCount ?? 0,
    waiting: () => scheduler?.queuedCount ?? 0,
  });
  scheduler = new Scheduler(engine, {
    maxQueued: config.maxQueued,
    maxQueuedPerClient: config.maxQueuedPerClient,
    maxGenerationMs: config.maxGenerationMs,
    keepFinishedMs,
    policy: resolveQueuePolicy(config.queuePolicy),
    onSubmit: (generation) => reportGeneration(generation, metrics, log),
  });
  made(scheduler);
  // Another instance's client asked to stop a generation that runs here.
  store.onCancelRequest((genId) => scheduler?.cancel(genId));
  const models = () => engine.models?.() ?? [engine.info.modelName];
  const context: ServerContext = {
    config,
    engineInfo: engine.info,
    models,
    sessions,
    store,
    scheduler,
    limiter,
    metrics,
    log,
  };
  const { embedder, tokenizer } = engine;
  if (embedder !== undefined) context.embeddings = new EmbeddingQueue(embedder, config);
  if (tokenizer !== undefined) context.tokenizer = tokenizer;
  return context;
}

/** A promise whose work starts only when begin() is first called. */
function deferred(work: () => Promise<void>): { promise: Promise<void>; begin: () => void } {
  let begin: () => void = () => undefined;
  const promise = new Promise<void>((resolve, reject) => {
    begin = () => {
      begin = () => undefined;
      work().then(resolve, reject);
    };
  });
  return { promise, begin: () => begin() };
}
