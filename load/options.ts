import { z } from 'zod';

export const SCENARIOS = ['chat', 'cancel', 'reconnect', 'slow-reader', 'idle', 'burst', 'bot', 'mixed'] as const;
export type ScenarioName = (typeof SCENARIOS)[number];

/** "60s", "2m", "500ms" or a number of milliseconds. */
const Duration = z.union([
  z.number(),
  z.string().transform((value, ctx) => {
    const match = /^(\d+(?:\.\d+)?)(ms|s|m|h)?$/.exec(value.trim());
    if (match === null) {
      ctx.addIssue({ code: 'custom', message: `"${value}" is not a duration like 500ms, 60s or 2m` });
      return z.NEVER;
    }
    const unit = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }[(match[2] ?? 'ms') as 'ms' | 's' | 'm' | 'h'];
    return Number(match[1]) * unit;
  }),
]);

/** "chat=3,cancel=1": weights of the scenarios that `mixed` draws from. */
const Mix = z.string().transform((value, ctx) => {
  const weights: Partial<Record<ScenarioName, number>> = {};
  for (const part of value.split(',').filter(Boolean)) {
    const [name, weight] = part.split('=');
    if (!SCENARIOS.includes(name as ScenarioName) || name === 'mixed' || !(Number(weight) > 0)) {
      ctx.addIssue({ code: 'custom', message: `bad mix entry "${part}"` });
      return z.NEVER;
    }
    weights[name as ScenarioName] = Number(weight);
  }
  return weights;
});

export const LoadOptions = z.object({
  /** ws://…/v1/ws for the WebSocket target; http://…/v1 for openai-sse. */
  url: z.string().url(),
  target: z.enum(['ws', 'openai-sse']).default('ws'),
  connections: z.coerce.number().int().min(1).max(100_000).default(10),
  duration: Duration.prefault(30_000),
  scenario: z.enum(SCENARIOS).default('chat'),
  mix: Mix.prefault('chat=6,cancel=2,reconnect=1,slow-reader=1'),
  /** Requests per second over all connections (open loop); without it each connection sends again as soon as it is answered. */
  rate: z.coerce.number().positive().optional(),
  /** Pause of a connection between its turns (closed loop). */
  thinkMs: z.coerce.number().int().min(0).default(0),
  turns: z.coerce.number().int().min(1).default(3),
  /** For `bot`: sessions one connection runs at once. */
  botSessions: z.coerce.number().int().min(1).max(1000).default(8),
  maxTokens: z.coerce.number().int().min(1).default(64),
  /** For `cancel`: stop after this many tokens. */
  cancelAfter: z.coerce.number().int().min(1).default(8),
  seed: z.coerce.number().int().min(0).default(1),
  apiKey: z.string().optional(),
  model: z.string().optional(),
  /** Connections opened per second while ramping up. */
  connectRate: z.coerce.number().positive().default(500),
  json: z.string().default('load-report.json'),
  html: z.string().default('load-report.html'),
});

export type LoadOptions = z.infer<typeof LoadOptions>;
