import http from 'node:http';
import https from 'node:https';
import type { UpstreamSetting } from './parseUpstreamSettings.js';
import type { Fetcher, LoadGauge, UpstreamProbe } from './probeUpstream.js';
import type { UpstreamKind } from './upstreamRequestOf.js';

/** Generations an upstream is assumed to run at once when it neither says nor is told (`#slots=`). */
export const DEFAULT_UPSTREAM_SLOTS = 8;

/** One inference server of the pool: what it serves, whether it answers, what runs on it from here. */
export class Upstream {
  readonly url: string;
  /** Connections kept open between requests: a new one per request would add to every first token. */
  readonly agent: http.Agent;
  readonly apiKey: string | undefined;
  readonly capacity: number;
  /** Where the capacity came from, for the log. */
  readonly capacityFrom: 'setting' | 'upstream' | 'default';
  kind: UpstreamKind = 'openai';
  load: LoadGauge | undefined;
  models: readonly string[] = [];
  healthy = false;
  /** Whether it has answered a probe yet (what it is, its models). */
  probed = false;
  /** Generations sent here and not yet released: never more than `capacity`. */
  inFlight = 0;
  /** Of those, the ones not cancelled: what its running gauge shows once every cancel took effect. */
  live = 0;

  constructor(
    readonly id: number,
    setting: UpstreamSetting,
    probe: UpstreamProbe | undefined,
    readonly get: Fetcher,
  ) {
    this.url = setting.url;
    this.apiKey = setting.apiKey;
    this.agent = setting.url.startsWith('https:')
      ? new https.Agent({ keepAlive: true })
      : new http.Agent({ keepAlive: true });
    const slots = setting.slots ?? probe?.slots;
    this.capacity = slots ?? DEFAULT_UPSTREAM_SLOTS;
    this.capacityFrom = setting.slots !== undefined ? 'setting' : slots !== undefined ? 'upstream' : 'default';
    if (probe !== undefined) this.learn(probe);
  }

  serves(model: string): boolean {
    return this.models.includes(model);
  }

  learn(probe: UpstreamProbe): void {
    this.kind = probe.kind;
    this.load = probe.load;
    this.models = probe.models;
    this.healthy = true;
    this.probed = true;
  }

  dispose(): void {
    this.agent.destroy();
  }
}

/** GETs with the upstream's key, bounded in time (`timeoutMs` unless told); undefined when it does not answer. */
export function fetcherFor(apiKey: string | undefined, timeoutMs: number): Fetcher {
  const headers = apiKey === undefined ? undefined : { authorization: `Bearer ${apiKey}` };
  return async (url, withinMs = timeoutMs) => {
    try {
      const response = await fetch(url, { headers, signal: AbortSignal.timeout(Math.max(1, Math.ceil(withinMs))) });
      return { status: response.status, text: await response.text() };
    } catch {
      return undefined;
    }
  };
}
