import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client';
import type { ErrorCode, FinishReason } from '../../protocol/index.js';

const PREFIX = 'llmchat_';
const LATENCY_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120];

export type GaugeSources = {
  connections: () => number;
  sessions: () => number;
  running: () => number;
  waiting: () => number;
};

/** Every Prometheus metric the server exports, named like vLLM's with our own prefix. */
export class Metrics {
  readonly registry = new Registry();
  readonly timeToFirstToken: Histogram;
  readonly interTokenLatency: Histogram;
  readonly queueTime: Histogram;
  readonly e2eLatency: Histogram;
  readonly promptTokens: Counter;
  readonly generationTokens: Counter;
  readonly requestsFinished: Counter<'finished_reason'>;
  readonly errors: Counter<'code'>;
  readonly rejected: Counter<'reason'>;
  readonly cancellations: Counter;
  readonly embeddingRequests: Counter;
  readonly embeddingTokens: Counter;
  readonly toolCalls: Counter;
  readonly constrainedGenerations: Counter<'kind'>;

  constructor(sources: GaugeSources) {
    const registers = [this.registry];
    const histogram = (name: string, help: string) =>
      new Histogram({ name: PREFIX + name, help, buckets: LATENCY_BUCKETS, registers });
    this.timeToFirstToken = histogram('time_to_first_token_seconds', 'Request arrival to first token.');
    this.interTokenLatency = histogram('inter_token_latency_seconds', 'Time between tokens of one generation.');
    this.queueTime = histogram('request_queue_time_seconds', 'Time a request waited for a sequence.');
    this.e2eLatency = histogram('e2e_request_latency_seconds', 'Request arrival to its end.');
    this.promptTokens = new Counter({ name: `${PREFIX}prompt_tokens_total`, help: 'Prompt tokens.', registers });
    this.generationTokens = new Counter({
      name: `${PREFIX}generation_tokens_total`,
      help: 'Generated tokens.',
      registers,
    });
    this.requestsFinished = new Counter({
      name: `${PREFIX}request_success_total`,
      help: 'Generations ended, by finish reason.',
      labelNames: ['finished_reason'],
      registers,
    });
    this.errors = new Counter({
      name: `${PREFIX}errors_total`,
      help: 'Errors sent, by code.',
      labelNames: ['code'],
      registers,
    });
    this.rejected = new Counter({
      name: `${PREFIX}rejected_requests_total`,
      help: 'Requests refused for load: queue_full or rate_limited.',
      labelNames: ['reason'],
      registers,
    });
    this.cancellations = new Counter({
      name: `${PREFIX}cancellations_total`,
      help: 'Generations cancelled.',
      registers,
    });
    this.embeddingRequests = new Counter({
      name: `${PREFIX}embedding_requests_total`,
      help: 'Embedding requests answered (POST /v1/embeddings).',
      registers,
    });
    this.embeddingTokens = new Counter({
      name: `${PREFIX}embedding_tokens_total`,
      help: 'Input tokens embedded.',
      registers,
    });
    this.toolCalls = new Counter({
      name: `${PREFIX}tool_calls_total`,
      help: 'Tool calls the model made (HTTP tool_calls, protocol tool.call).',
      registers,
    });
    this.constrainedGenerations = new Counter({
      name: `${PREFIX}constrained_generations_total`,
      help: 'Generations constrained by a grammar, by kind: json (response format) or tool_call (a forced call).',
      labelNames: ['kind'],
      registers,
    });
    const gauge = (name: string, help: string, read: () => number) =>
      new Gauge({
        name: PREFIX + name,
        help,
        registers,
        collect() {
          this.set(read());
        },
      });
    gauge('connections', 'Open WebSocket connections.', sources.connections);
    gauge('sessions', 'Sessions kept.', sources.sessions);
    gauge('num_requests_running', 'Generations decoding (sequences in use).', sources.running);
    gauge('num_requests_waiting', 'Generations waiting for a sequence.', sources.waiting);
    collectDefaultMetrics({ register: this.registry, prefix: PREFIX });
  }

  /** Counts an error answered to a client; load refusals are counted apart as well. */
  countError(code: ErrorCode): void {
    this.errors.inc({ code });
    if (code === 'queue_full' || code === 'rate_limited') this.rejected.inc({ reason: code });
  }

  countFinish(finish: FinishReason): void {
    this.requestsFinished.inc({ finished_reason: finish });
    if (finish === 'cancelled') this.cancellations.inc();
  }
}
