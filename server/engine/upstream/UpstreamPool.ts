import { setTimeout as delay } from 'node:timers/promises';
import { LRUCache } from 'lru-cache';
import type { Logger } from '../../log.js';
import { type Engine, EngineError, type EngineInfo, type EngineRequest, type EngineResult } from '../Engine.js';
import { awaitCancelTaken } from './awaitCancelTaken.js';
import { chooseUpstream } from './chooseUpstream.js';
import type { UpstreamSetting } from './parseUpstreamSettings.js';
import { listModels, probeUpstream, type UpstreamProbe } from './probeUpstream.js';
import { streamCompletion } from './streamCompletion.js';
import { fetcherFor, Upstream } from './Upstream.js';
import { UpstreamFailure } from './UpstreamFailure.js';
import { UpstreamToolCalls } from './UpstreamToolCalls.js';
import { upstreamRequestOf } from './upstreamRequestOf.js';

export type UpstreamPoolOptions = {
  upstreams: readonly UpstreamSetting[];
  /** How often each upstream is checked. */
  healthIntervalMs: number;
  /** A request that receives nothing for this long fails. */
  idleTimeoutMs: number;
  /** How long a cancel waits for the upstream to show the generation gone (0: not at all). */
  cancelWaitMs: number;
  /** How long the start waits for a first upstream to answer before it fails. */
  startTimeoutMs: number;
  /** The context size assumed when the default model's upstream does not say. */
  contextSize: number;
  log: Logger;
};

/** Conversations remembered for the upstream that served them last. */
const AFFINITY_REMEMBERED = 100_000;
/** A generation that fails before its first token is tried on one other upstream. */
const ATTEMPTS = 2;

type Lease = { upstream: Upstream; cancelled: boolean };
type Pick = Lease | 'none' | 'full';
type Waiter = { retry: () => boolean };

/**
 * The Engine over OpenAI-compatible inference servers: each generation streams from one upstream
 * chosen for warmth (the one its conversation used last) or load, never past an upstream's
 * capacity; a failing upstream is left out until its health check passes again; a request that
 * fails before its first token is tried once elsewhere.
 */
export class UpstreamPool implements Engine {
  private readonly affinity = new LRUCache<string, number>({ max: AFFINITY_REMEMBERED });
  private waiters: Waiter[] = [];
  private turn = 0;
  private checking = false;
  private readonly timer: NodeJS.Timeout;

  private constructor(
    readonly info: EngineInfo,
    private readonly upstreams: readonly Upstream[],
    private readonly options: UpstreamPoolOptions,
  ) {
    this.timer = setInterval(() => void this.checkAll(), options.healthIntervalMs);
    this.timer.unref();
  }

  /** Probes every upstream (waiting up to `startTimeoutMs` for a first one to answer) and starts the health checks. */
  static async connect(options: UpstreamPoolOptions): Promise<UpstreamPool> {
    const { log } = options;
    const probeTimeoutMs = Math.max(1000, options.healthIntervalMs);
    const targets = options.upstreams.map((setting) => ({ setting, get: fetcherFor(setting.apiKey, probeTimeoutMs) }));
    const probeAll = () => Promise.all(targets.map(({ setting, get }) => probeUpstream(setting.url, get)));
    const giveUpAt = performance.now() + options.startTimeoutMs;
    let probes = await probeAll();
    while (!probes.some((probe) => probe !== undefined && probe.models.length > 0)) {
      const urls = options.upstreams.map((setting) => setting.url);
      if (performance.now() > giveUpAt) {
        const waited = `within ${options.startTimeoutMs} ms`;
        throw new Error(`No upstream answered GET <url>/models with a model ${waited}: ${urls.join(', ')}`);
      }
      log.warn({ upstreams: urls }, 'no upstream answers yet; trying again');
      await delay(options.healthIntervalMs);
      probes = await probeAll();
    }
    const upstreams = targets.map(({ setting, get }, id) => new Upstream(id, setting, probes[id], get));
    for (const upstream of upstreams) logUpstream(log, upstream, probes[upstream.id]);
    const first = probes.find((probe) => probe !== undefined && probe.models.length > 0) as UpstreamProbe;
    const modelName = first.models[0] as string;
    const info: EngineInfo = {
      modelName,
      contextSize: first.contextSize ?? options.contextSize,
      sequences: upstreams.reduce((sum, upstream) => sum + upstream.capacity, 0),
      reasoning: first.reasoning ?? /gpt-oss/i.test(modelName),
      backend: 'upstream',
      threads: 0,
    };
    return new UpstreamPool(info, upstreams, options);
  }

  models(): readonly string[] {
    const all = new Set([this.info.modelName]);
    for (const upstream of this.upstreams) for (const model of upstream.models) all.add(model);
    return [...all];
  }

  async generate(request: EngineRequest): Promise<EngineResult> {
    const model = request.params.model ?? this.info.modelName;
    const tried: Upstream[] = [];
    const progress = { streamed: false };
    let failure: UpstreamFailure | undefined;
    while (tried.length < ATTEMPTS) {
      const lease = await this.acquire(model, request, tried);
      if (lease === 'aborted') return { stop: 'aborted', promptTokens: 0, cachedPromptTokens: 0 };
      if (lease === 'none') throw this.noUpstream(model, failure);
      tried.push(lease.upstream);
      try {
        return await this.attempt(lease, request, model, progress);
      } catch (error) {
        if (!(error instanceof UpstreamFailure)) throw error;
        failure = error;
        this.noteFailure(lease.upstream, error, progress.streamed);
        if (progress.streamed || !error.retryable) throw error.toEngineError();
      } finally {
        this.release(lease);
      }
    }
    throw (failure as UpstreamFailure).toEngineError();
  }

  async dispose(): Promise<void> {
    clearInterval(this.timer);
    for (const upstream of this.upstreams) upstream.dispose();
  }

  /** One try on one upstream: streams its answer; a cancel returns once the upstream shows it stopped. */
  private async attempt(
    lease: Lease,
    request: EngineRequest,
    model: string,
    progress: { streamed: boolean },
  ): Promise<EngineResult> {
    const { upstream } = lease;
    let finish: 'stop' | 'length' | 'tool_calls' | undefined;
    let usage: { promptTokens: number; cachedPromptTokens: number | undefined } | undefined;
    const calls = new UpstreamToolCalls();
    const outcome = await streamCompletion(upstream, upstreamRequestOf(request, model, upstream.kind), {
      signal: request.signal,
      idleTimeoutMs: this.options.idleTimeoutMs,
      onEvent: (event) => {
        for (const { text, channel } of event.pieces) {
          progress.streamed = true;
          request.onChunk({ text, channel, tokens: 1 });
        }
        for (const piece of event.toolCalls) {
          progress.streamed = true;
          const chunk = calls.read(piece);
          if (chunk !== undefined) request.onToolCallChunk?.(chunk);
        }
        finish ??= event.finish;
        usage ??= event.usage;
      },
    });
    const counts = { promptTokens: usage?.promptTokens ?? 0, cachedPromptTokens: usage?.cachedPromptTokens ?? 0 };
    if (outcome === 'aborted') {
      lease.cancelled = true;
      upstream.live -= 1;
      await awaitCancelTaken(upstream, this.options.cancelWaitMs);
      return { stop: 'aborted', ...counts };
    }
    if (finish === 'tool_calls' && calls.count > 0) return { stop: 'tool_calls', ...counts };
    return { stop: finish === 'length' ? 'length' : 'stop', ...counts };
  }

  /** A place on an upstream for this generation, waiting while every one that could take it is full. */
  private acquire(
    model: string,
    request: EngineRequest,
    tried: readonly Upstream[],
  ): Promise<Lease | 'none' | 'aborted'> {
    const { signal, affinityKey } = request;
    if (signal.aborted) return Promise.resolve('aborted');
    const first = this.pick(model, affinityKey, tried);
    if (first !== 'full') return Promise.resolve(first);
    return new Promise((resolve) => {
      const onAbort = () => {
        this.waiters = this.waiters.filter((other) => other !== waiter);
        resolve('aborted');
      };
      const waiter: Waiter = {
        retry: () => {
          const next = this.pick(model, affinityKey, tried);
          if (next === 'full') return false;
          signal.removeEventListener('abort', onAbort);
          resolve(next);
          return true;
        },
      };
      signal.addEventListener('abort', onAbort, { once: true });
      this.waiters.push(waiter);
    });
  }

  private pick(model: string, affinityKey: string | undefined, tried: readonly Upstream[]): Pick {
    const candidates = this.upstreams.filter(
      (upstream) => upstream.healthy && upstream.serves(model) && !tried.includes(upstream),
    );
    if (candidates.length === 0) return 'none';
    const preferred = affinityKey === undefined ? undefined : this.affinity.get(affinityKey);
    const id = chooseUpstream(candidates, preferred, this.turn++);
    const upstream = id === undefined ? undefined : this.upstreams[id];
    if (upstream === undefined) return 'full';
    upstream.inFlight += 1;
    upstream.live += 1;
    if (affinityKey !== undefined) this.affinity.set(affinityKey, upstream.id);
    return { upstream, cancelled: false };
  }

  private release({ upstream, cancelled }: Lease): void {
    upstream.inFlight -= 1;
    if (!cancelled) upstream.live -= 1;
    this.wake();
  }

  /** Lets waiting generations look again (a place freed, an upstream left or came back), in arrival order. */
  private wake(): void {
    this.waiters = this.waiters.filter((waiter) => !waiter.retry());
  }

  private noteFailure(upstream: Upstream, failure: UpstreamFailure, streamed: boolean): void {
    const { log } = this.options;
    const fields = { upstream: upstream.url, failure: failure.kind, reason: failure.message };
    if (!streamed && failure.retryable) log.warn(fields, 'upstream failed before the first token; trying another');
    else log.warn(fields, 'upstream failed');
    if (failure.ejects) this.eject(upstream, failure.message);
  }

  private noUpstream(model: string, failure: UpstreamFailure | undefined): Error {
    if (failure !== undefined) return failure.toEngineError();
    const known = this.upstreams.filter((upstream) => upstream.serves(model)).length;
    return new EngineError(
      'upstream_error',
      `No upstream can take it now: the ${known} serving "${model}" are out of service`,
    );
  }

  private async checkAll(): Promise<void> {
    if (this.checking) return;
    this.checking = true;
    try {
      await Promise.all(this.upstreams.map((upstream) => this.check(upstream)));
    } finally {
      this.checking = false;
    }
  }

  /** A healthy upstream must list its models; an ejected one comes back once it answers a whole probe. */
  private async check(upstream: Upstream): Promise<void> {
    if (upstream.healthy) {
      const models = await listModels(upstream.url, upstream.get);
      if (models === undefined) this.eject(upstream, 'GET /models got no answer');
      else upstream.models = models;
      return;
    }
    const probe = await probeUpstream(upstream.url, upstream.get);
    if (probe === undefined) return;
    upstream.learn(probe);
    this.options.log.info({ upstream: upstream.url, models: probe.models }, 'upstream restored');
    this.wake();
  }

  private eject(upstream: Upstream, reason: string): void {
    if (!upstream.healthy) return;
    upstream.healthy = false;
    this.options.log.warn({ upstream: upstream.url, reason }, 'upstream ejected');
    this.wake();
  }
}

function logUpstream(log: Logger, upstream: Upstream, probe: UpstreamProbe | undefined): void {
  const fields = {
    upstream: upstream.url,
    kind: upstream.kind,
    models: upstream.models,
    slots: upstream.capacity,
    slotsFrom: upstream.capacityFrom,
  };
  if (probe === undefined) log.warn(fields, 'upstream does not answer; it joins when a health check passes');
  else log.info(fields, 'upstream found');
  if (upstream.capacityFrom === 'default') {
    log.warn(
      { upstream: upstream.url, slots: upstream.capacity },
      'upstream capacity unknown: assuming it; set #slots=N in its URL',
    );
  }
}
