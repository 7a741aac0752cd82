import type { Refusal } from '../protocol/index.js';
import type { Config } from './config.js';
import type { EngineInfo, ModelTokenizer } from './engine/Engine.js';
import type { RateLimiter } from './limits/RateLimiter.js';
import type { Logger } from './log.js';
import type { Metrics } from './observability/Metrics.js';
import type { EmbeddingQueue } from './scheduler/EmbeddingQueue.js';
import type { Scheduler } from './scheduler/Scheduler.js';
import type { SessionStore } from './sessions/SessionStore.js';
import type { Store } from './store/Store.js';

/** What request handlers (WebSocket frames and HTTP API) may use: never a socket library. */
export type ServerContext = {
  config: Config;
  engineInfo: EngineInfo;
  /** The models a request may name, the default (`engineInfo.modelName`) first. */
  models: () => readonly string[];
  sessions: SessionStore;
  /** Where what outlives the process is kept (sessions go through `sessions`; this is for the rest). */
  store: Store;
  scheduler: Scheduler;
  /** The loaded model's embeddings, behind their own queue; absent where the engine has none (upstream engines). */
  embeddings?: EmbeddingQueue;
  /** The loaded model's tokenizer; absent where the engine has none (upstream engines). */
  tokenizer?: ModelTokenizer;
  limiter: RateLimiter;
  metrics: Metrics;
  log: Logger;
};

/**
 * The largest maxTokens a request may ask for: `--max-tokens`, and never more than the context
 * holds (an answer longer than the context would crawl through context shifts).
 */
export function maxTokensAllowed(ctx: Pick<ServerContext, 'config' | 'engineInfo'>): number {
  return Math.min(ctx.config.maxTokens, ctx.engineInfo.contextSize);
}

/** Refuses a request that names a model the engine does not serve, naming the ones it does. */
export function unknownModel(ctx: Pick<ServerContext, 'models'>, model: string | undefined): Refusal | undefined {
  if (model === undefined) return undefined;
  const models = ctx.models();
  if (models.includes(model)) return undefined;
  const available = models.map((name) => `"${name}"`).join(', ');
  return {
    code: 'not_found',
    message: `The model "${model.slice(0, 100)}" does not exist; available: ${available} (GET /v1/models)`,
  };
}
