import { rootOf } from './parseUpstreamSettings.js';
import type { UpstreamKind } from './upstreamRequestOf.js';

/** Where an upstream's count of running generations can be read, to see a cancelled one gone. */
export type LoadGauge = { path: '/metrics'; metric: string } | { path: '/slots' };

/** What an upstream says about itself. */
export type UpstreamProbe = {
  kind: UpstreamKind;
  models: string[];
  /** Generations it runs at once, when it says. */
  slots: number | undefined;
  contextSize: number | undefined;
  reasoning: boolean | undefined;
  load: LoadGauge | undefined;
};

type Json = Record<string, unknown>;
export type Fetcher = (url: string, timeoutMs?: number) => Promise<{ status: number; text: string } | undefined>;

/** The running-generations gauges of the servers we know, in Prometheus' text format. */
const RUNNING_GAUGES = ['llmchat_num_requests_running', 'llamacpp:requests_processing', 'vllm:num_requests_running'];

/**
 * Asks an upstream what it serves (`GET <url>/models`, which must answer) and what it is: this
 * server's `/readyz` (model.sequences), llama-server's `/props` (total_slots), else any
 * OpenAI-compatible server (vLLM's `max_model_len` and running gauge when it is vLLM).
 * Undefined when it does not answer.
 */
export async function probeUpstream(url: string, get: Fetcher): Promise<UpstreamProbe | undefined> {
  const listed = await getJson(get, url, '/models');
  if (listed === undefined) return undefined;
  const entries = Array.isArray(listed.data) ? listed.data.filter(isObject) : [];
  const models = entries.map((entry) => entry.id).filter((id): id is string => typeof id === 'string');
  const root = rootOf(url);
  const ready = await getJson(get, root, '/readyz');
  const model = isObject(ready?.model) ? ready.model : undefined;
  if (model !== undefined && typeof model.sequences === 'number') {
    return {
      kind: 'llm-chat-server',
      models,
      slots: model.sequences,
      contextSize: numberOr(model.contextSize),
      reasoning: typeof model.reasoning === 'boolean' ? model.reasoning : undefined,
      load: { path: '/metrics', metric: 'llmchat_num_requests_running' },
    };
  }
  const props = await getJson(get, root, '/props');
  if (props !== undefined && typeof props.total_slots === 'number') {
    const settings = isObject(props.default_generation_settings) ? props.default_generation_settings : {};
    const load: LoadGauge | undefined =
      props.endpoint_slots === true
        ? { path: '/slots' }
        : props.endpoint_metrics === true
          ? { path: '/metrics', metric: 'llamacpp:requests_processing' }
          : undefined;
    return {
      kind: 'llama-server',
      models,
      slots: props.total_slots,
      contextSize: numberOr(settings.n_ctx),
      reasoning: undefined,
      load,
    };
  }
  const metrics = await get(`${root}/metrics`);
  const metric = metrics?.status === 200 ? RUNNING_GAUGES.find((name) => metrics.text.includes(name)) : undefined;
  return {
    kind: 'openai',
    models,
    slots: undefined,
    contextSize: numberOr(entries[0]?.max_model_len),
    reasoning: undefined,
    load: metric === undefined ? undefined : { path: '/metrics', metric },
  };
}

/** The models an upstream lists, or undefined when it does not answer: its health check. */
export async function listModels(url: string, get: Fetcher): Promise<string[] | undefined> {
  const listed = await getJson(get, url, '/models');
  if (listed === undefined || !Array.isArray(listed.data)) return undefined;
  return listed.data
    .filter(isObject)
    .map((entry) => entry.id)
    .filter((id): id is string => typeof id === 'string');
}

/** Generations running on an upstream now, from its gauge; undefined when it cannot be read. */
export async function readRunning(
  url: string,
  load: LoadGauge,
  get: Fetcher,
  timeoutMs: number,
): Promise<number | undefined> {
  const answer = await get(rootOf(url) + load.path, timeoutMs);
  if (answer?.status !== 200) return undefined;
  if (load.path === '/metrics') return sumSamples(answer.text, load.metric);
  try {
    const slots = JSON.parse(answer.text) as unknown;
    return Array.isArray(slots)
      ? slots.filter((slot) => isObject(slot) && slot.is_processing === true).length
      : undefined;
  } catch {
    return undefined;
  }
}

/** The sum of one metric's samples (every label set) in Prometheus' text format; undefined when absent. */
export function sumSamples(text: string, metric: string): number | undefined {
  let sum: number | undefined;
  for (const line of text.split('\n')) {
    if (!line.startsWith(metric)) continue;
    const next = line.charAt(metric.length);
    if (next !== ' ' && next !== '{') continue;
    const labelsEnd = next === '{' ? line.indexOf('}', metric.length) : metric.length;
    // The value follows the name and labels; a timestamp may follow it.
    const value = Number(
      line
        .slice(labelsEnd + 1)
        .trim()
        .split(/\s+/)[0],
    );
    if (Number.isFinite(value)) sum = (sum ?? 0) + value;
  }
  return sum;
}

async function getJson(get: Fetcher, base: string, path: string): Promise<Json | undefined> {
  const answer = await get(base + path);
  if (answer?.status !== 200) return undefined;
  try {
    const value = JSON.parse(answer.text) as unknown;
    return isObject(value) ? value : undefined;
  } catch {
    return undefined;
  }
}

function numberOr(value: unknown): number | undefined {
  return typeof value === 'number' && Number.isFinite(value) ? value : undefined;
}

function isObject(value: unknown): value is Json {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
