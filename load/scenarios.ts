import type { LoadOptions, ScenarioName } from './options.js';
import type { Recorder } from './Recorder.js';
import { WsVirtualUser } from './WsVirtualUser.js';

export type RunContext = {
  options: LoadOptions;
  recorder: Recorder;
  /** Resolves when the next request may go (open loop pacing), or at once (closed loop). */
  pace: () => Promise<void>;
  stopped: () => boolean;
  random: () => number;
};

const PROMPTS = ['Once upon a time', 'Tell me about a cat', 'The little dog', 'What happened next?', 'A big red ball'];
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** One virtual user on the WebSocket target, running its scenario until the run stops. */
export async function runWsUser(ctx: RunContext, index: number): Promise<void> {
  const { options } = ctx;
  const user = new WsVirtualUser(options.url, ctx.recorder, options.apiKey);
  if (!(await user.connect())) return;
  try {
    while (!ctx.stopped()) {
      const scenario = options.scenario === 'mixed' ? pick(options.mix, ctx.random) : options.scenario;
      if (!user.open && !(await user.connect())) return;
      await runScenario(scenario, user, ctx, index);
      await user.closeSession();
      if (options.thinkMs > 0) await sleep(options.thinkMs);
    }
  } finally {
    user.close();
  }
}

async function runScenario(
  scenario: Exclude<ScenarioName, 'mixed'>,
  user: WsVirtualUser,
  ctx: RunContext,
  index: number,
): Promise<void> {
  const { options } = ctx;
  const params = { maxTokens: options.maxTokens, seed: options.seed + index };
  const prompt = () => PROMPTS[Math.floor(ctx.random() * PROMPTS.length)] ?? 'Hello';
  switch (scenario) {
    case 'chat': {
      if (!(await user.openSession())) return;
      for (let turn = 0; turn < options.turns && !ctx.stopped(); turn++) {
        await ctx.pace();
        const result = await user.turn(prompt(), params);
        if ('error' in result) {
          // A well-behaved client waits as long as the server asked before it tries again.
          if (result.retryAfterMs !== undefined) await sleep(Math.min(result.retryAfterMs, 10_000));
          return;
        }
      }
      return;
    }
    case 'cancel': {
      if (!(await user.openSession())) return;
      await ctx.pace();
      let cancelled = false;
      await user.turn(
        prompt(),
        { ...params, maxTokens: Math.max(options.maxTokens, options.cancelAfter * 4) },
        {
          onTokens: (seq, self, generation) => {
            if (cancelled || seq < options.cancelAfter) return;
            cancelled = true;
            self.cancel(generation);
          },
        },
      );
      return;
    }
    case 'reconnect': {
      // Drops the socket mid answer, comes back, reattaches and resumes after the last seq held.
      if (!(await user.openSession())) return;
      await ctx.pace();
      const maxTokens = Math.max(options.maxTokens, options.cancelAfter * 4);
      await user.turn(prompt(), { ...params, maxTokens }, { dropAfter: options.cancelAfter });
      return;
    }
    case 'bot': {
      // A bot multiplexing conversations: one connection, `--bot-sessions` sessions sending at once.
      const sessions = await Promise.all(Array.from({ length: options.botSessions }, () => user.openSession()));
      const open = sessions.filter((sessionId): sessionId is string => sessionId !== undefined);
      for (let turn = 0; turn < options.turns && !ctx.stopped(); turn++) {
        await ctx.pace();
        await Promise.all(open.map((sessionId) => user.turn(prompt(), params, {}, sessionId)));
      }
      await Promise.all(open.map((sessionId) => user.closeSession(sessionId)));
      return;
    }
    case 'slow-reader': {
      if (!(await user.openSession())) return;
      await ctx.pace();
      let paused = false;
      await user.turn(prompt(), params, {
        onTokens: (seq, self) => {
          if (paused || seq < 2) return;
          paused = true;
          self.pauseReading(1000);
        },
      });
      return;
    }
    case 'idle':
      // Holds the connection, with an application ping every 30 s (the server pings too).
      for (let second = 1; !ctx.stopped(); second++) {
        await sleep(1000);
        if (second % 30 === 0) user.ping();
      }
      return;
    case 'burst': {
      if (!(await user.openSession())) return;
      // Everyone sends at the same instants: the next multiple of five seconds.
      await sleep(5000 - (Date.now() % 5000));
      if (ctx.stopped()) return;
      await user.turn(prompt(), params);
      return;
    }
    default:
      scenario satisfies never;
  }
}

function pick(weights: LoadOptions['mix'], random: () => number): Exclude<ScenarioName, 'mixed'> {
  const entries = Object.entries(weights) as Array<[Exclude<ScenarioName, 'mixed'>, number]>;
  const total = entries.reduce((sum, [, weight]) => sum + weight, 0);
  let roll = random() * total;
  for (const [name, weight] of entries) {
    roll -= weight;
    if (roll <= 0) return name;
  }
  return entries[0]?.[0] ?? 'chat';
}

/** A small seeded PRNG, so runs can be repeated. */
export function seededRandom(seed: number): () => number {
  let state = seed >>> 0 || 1;
  return () => {
    state = (state * 1664525 + 1013904223) >>> 0;
    return state / 2 ** 32;
  };
}
