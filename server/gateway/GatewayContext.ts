import type { Config } from '../config.js';
import type { EngineInfo } from '../engine/Engine.js';
import type { RateLimiter } from '../limits/RateLimiter.js';
import type { Logger } from '../log.js';
import type { Scheduler } from '../scheduler/Scheduler.js';
import type { SessionStore } from '../sessions/SessionStore.js';

/** What frame handlers may use: the stores and the scheduler, never a socket library. */
export type GatewayContext = {
  config: Config;
  engineInfo: EngineInfo;
  sessions: SessionStore;
  scheduler: Scheduler;
  limiter: RateLimiter;
  log: Logger;
};
