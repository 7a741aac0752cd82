import type { SamplingParams } from '../engine/Engine.js';
import type { Logger } from '../log.js';
import type { Generation } from '../scheduler/Generation.js';
import type { Metrics } from './Metrics.js';

/** Follows one generation into the metrics, and logs one line when it ends (never its text). */
export function reportGeneration(generation: Generation, metrics: Metrics, log: Logger): void {
  let lastChunkAt: number | undefined;
  generation.subscribe((event) => {
    const now = performance.now();
    switch (event.kind) {
      case 'queued':
        return;
      case 'started':
        metrics.queueTime.observe((now - generation.createdAt) / 1000);
        return;
      case 'chunk': {
        if (lastChunkAt === undefined) metrics.timeToFirstToken.observe((now - generation.createdAt) / 1000);
        else {
          const perToken = (now - lastChunkAt) / 1000 / Math.max(1, event.tokens);
          for (let i = 0; i < event.tokens; i++) metrics.interTokenLatency.observe(perToken);
        }
        lastChunkAt = now;
        return;
      }
      case 'toolCall':
        return;
      case 'done': {
        const { finish, usage, timings, error } = event.outcome;
        metrics.toolCalls.inc(generation.toolCalls.length);
        const constraint = constraintOf(generation.params, generation.toolCalls.length > 0);
        if (constraint !== undefined) metrics.constrainedGenerations.inc({ kind: constraint });
        metrics.e2eLatency.observe(timings.totalMs / 1000);
        metrics.promptTokens.inc(usage.promptTokens);
        metrics.generationTokens.inc(usage.completionTokens);
        metrics.countFinish(finish);
        if (error !== undefined) metrics.countError(error.code);
        log.info(
          {
            genId: generation.id,
            sessionId: generation.sessionId,
            clientKey: generation.clientKey,
            finish,
            ...usage,
            ...timings,
          },
          'generation done',
        );
        return;
      }
      default:
        event satisfies never;
    }
  });
}

/**
 * Which grammar constrained the answer: a tool call (forced, or one the model chose to make, whose
 * arguments node-llama-cpp constrains), a JSON response format, or none.
 */
function constraintOf(
  { tools, toolChoice = 'auto', responseFormat }: SamplingParams,
  calledTools: boolean,
): 'tool_call' | 'json' | undefined {
  const forced = (tools?.length ?? 0) > 0 && toolChoice !== 'auto' && toolChoice !== 'none';
  if (forced || calledTools) return 'tool_call';
  if (responseFormat !== undefined && responseFormat.type !== 'text') return 'json';
  return undefined;
}
