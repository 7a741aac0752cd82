import { describe, expect, it } from 'vitest';
import type { Engine, EngineRequest, EngineResult } from '../../server/engine/Engine.js';
import type { GenerationEvent } from '../../server/scheduler/Generation.js';
import { firstComeFirstServed } from '../../server/scheduler/policies/firstComeFirstServed.js';
import { roundRobin } from '../../server/scheduler/policies/roundRobin.js';
import { Scheduler, type SchedulerOptions, SchedulerRefusal } from '../../server/scheduler/Scheduler.js';
import { SlotTable } from '../../server/scheduler/SlotTable.js';

/**
 * A test double of the engine, for scheduling logic only: each generate() call waits until the
 * test releases it (or its signal aborts), emitting one token per tick.
 */
class ScriptedEngine implements Engine {
  readonly info = {
    modelName: 'double',
    contextSize: 1024,
    sequences: 2,
    reasoning: false,
    backend: 'cpu',
    threads: 1,
  };
  readonly calls: Array<{ request: EngineRequest; release: () => void }> = [];

  generate(request: EngineRequest): Promise<EngineResult> {
    return new Promise((resolve) => {
      const finish = (stop: EngineResult['stop']) => resolve({ stop, promptTokens: 4, cachedPromptTokens: 0 });
      request.onChunk({ text: 'x', channel: 'content', tokens: 1 });
      request.signal.addEventListener('abort', () => finish('aborted'));
      this.calls.push({ request, release: () => finish('stop') });
    });
  }

  async dispose(): Promise<void> {}
}

function submit(scheduler: Scheduler, id: string, events: GenerationEvent[] = []) {
  const generation = scheduler.submit({
    id,
    sessionId: `s_${id}`,
    clientKey: 'k',
    messages: [],
    params: { maxTokens: 8 },
  });
  generation.subscribe((event) => events.push(event));
  scheduler.pump();
  return generation;
}

function options(overrides: Partial<SchedulerOptions> = {}): SchedulerOptions {
  return {
    maxQueued: 10,
    maxQueuedPerClient: 10,
    maxGenerationMs: 10_000,
    keepFinishedMs: 60_000,
    policy: roundRobin,
    ...overrides,
  };
}

const tick = () => new Promise((resolve) => setImmediate(resolve));

describe('Scheduler (with a scripted engine double)', () => {
  it('runs one generation per sequence and queues the rest in order, with positions', async () => {
    const engine = new ScriptedEngine();
    const scheduler = new Scheduler(engine, options({ maxQueued: 10 }));
    const eventsC: GenerationEvent[] = [];
    submit(scheduler, 'a');
    submit(scheduler, 'b');
    const c = submit(scheduler, 'c', eventsC);
    const d = submit(scheduler, 'd');
    expect(engine.calls.map((call) => call.request.slot).sort()).toEqual([0, 1]);
    expect([c.state, d.state]).toEqual(['queued', 'queued']);
    expect(eventsC).toEqual([{ kind: 'queued', position: 1 }]);

    engine.calls[0]?.release();
    await tick();
    expect(c.state).toBe('running');
    expect(eventsC.map((e) => e.kind)).toEqual(['queued', 'started', 'chunk']);
    expect(d.state).toBe('queued');
  });

  it('measures timings.ttftMs from arrival, so that a queued generation counts its wait', async () => {
    const engine = new ScriptedEngine();
    const scheduler = new Scheduler(engine, options());
    submit(scheduler, 'a');
    submit(scheduler, 'b');
    const c = submit(scheduler, 'c');
    await new Promise((resolve) => setTimeout(resolve, 30));
    engine.calls[0]?.release();
    await tick();
    engine.calls[2]?.release();
    await tick();
    const timings = c.outcome?.timings;
    expect(timings?.queuedMs).toBeGreaterThanOrEqual(25);
    expect(timings?.ttftMs).toBeGreaterThanOrEqual(timings?.queuedMs ?? Number.POSITIVE_INFINITY);
  });

  it('refuses past maxQueued with queue_full and a retryAfterMs estimate', () => {
    const scheduler = new Scheduler(new ScriptedEngine(), options({ maxQueued: 1 }));
    submit(scheduler, 'a');
    submit(scheduler, 'b');
    submit(scheduler, 'c');
    try {
      submit(scheduler, 'd');
      expect.unreachable();
    } catch (error) {
      expect(error).toBeInstanceOf(SchedulerRefusal);
      expect(error).toMatchObject({ code: 'queue_full' });
      expect((error as SchedulerRefusal).retryAfterMs).toBeGreaterThan(0);
    }
  });

  it('takes a cancelled queued generation out at once and moves the others up', () => {
    const scheduler = new Scheduler(new ScriptedEngine(), options({ maxQueued: 10 }));
    submit(scheduler, 'a');
    submit(scheduler, 'b');
    const c = submit(scheduler, 'c');
    const eventsD: GenerationEvent[] = [];
    submit(scheduler, 'd', eventsD);
    expect(scheduler.cancel('c')).toBe('cancelled');
    expect(c.outcome?.finish).toBe('cancelled');
    expect(eventsD).toEqual([
      { kind: 'queued', position: 2 },
      { kind: 'queued', position: 1 },
    ]);
    expect(scheduler.cancel('c')).toBe('already_done');
    expect(scheduler.cancel('zzz')).toBe('not_found');
  });

  it('ends a generation that runs past maxGenerationMs with finish timeout and frees its sequence', async () => {
    const engine = new ScriptedEngine();
    const scheduler = new Scheduler(engine, options({ maxGenerationMs: 20 }));
    const a = submit(scheduler, 'a');
    await new Promise((resolve) => setTimeout(resolve, 60));
    expect(a.outcome?.finish).toBe('timeout');
    expect(scheduler.runningCount).toBe(0);
  });

  it('on drain refuses new work, cancels the queued and waits for the running', async () => {
    const engine = new ScriptedEngine();
    const scheduler = new Scheduler(engine, options({ maxQueued: 10 }));
    const a = submit(scheduler, 'a');
    submit(scheduler, 'b');
    const c = submit(scheduler, 'c');
    const drained = scheduler.drain(10_000);
    expect(c.outcome?.finish).toBe('cancelled');
    expect(() => submit(scheduler, 'late')).toThrow(/shutting down/);
    for (const call of engine.calls) call.release();
    await drained;
    expect(a.outcome?.finish).toBe('stop');
  });
});

describe('queue policies (with a scripted engine double)', () => {
  /** The flooder's first two run; four more of its requests wait, then one from a quiet client. */
  function flood(policy: SchedulerOptions['policy']): string[] {
    const scheduler = new Scheduler(new ScriptedEngine(), options({ policy }));
    const positions = new Map<string, number>();
    const submitAs = (clientKey: string, id: string) => {
      const generation = scheduler.submit({
        id,
        sessionId: `s_${id}`,
        clientKey,
        messages: [],
        params: { maxTokens: 8 },
      });
      generation.subscribe((event) => {
        if (event.kind === 'queued') positions.set(id, event.position);
      });
      scheduler.pump();
    };
    for (const id of ['a1', 'a2', 'a3', 'a4', 'a5', 'a6']) submitAs('flooder', id);
    submitAs('quiet', 'b1');
    const waiting = [...positions].filter(([, position]) => position > 0);
    return waiting.sort((x, y) => x[1] - y[1]).map(([id]) => id);
  }

  it('round-robin serves a quiet client before the rest of a flood', () => {
    expect(flood(roundRobin)).toEqual(['b1', 'a3', 'a4', 'a5', 'a6']);
  });

  it('fifo serves in arrival order (the baseline)', () => {
    expect(flood(firstComeFirstServed)).toEqual(['a3', 'a4', 'a5', 'a6', 'b1']);
  });

  it('refuses a client past maxQueuedPerClient while others can still queue', () => {
    const scheduler = new Scheduler(new ScriptedEngine(), options({ maxQueuedPerClient: 2 }));
    const submitAs = (clientKey: string, id: string) =>
      scheduler.submit({ id, sessionId: `s_${id}`, clientKey, messages: [], params: { maxTokens: 8 } });
    for (const id of ['a1', 'a2', 'a3', 'a4']) {
      submitAs('a', id);
      scheduler.pump();
    }
    expect(() => submitAs('a', 'a5')).toThrow(/2 generations waiting/);
    expect(() => submitAs('b', 'b1')).not.toThrow();
  });
});

describe('SlotTable', () => {
  it('gives a session its own sequence back, then an empty one, then the least recently used', () => {
    const slots = new SlotTable(2);
    const a = slots.acquire('A') as number;
    const b = slots.acquire('B') as number;
    expect(slots.acquire('C')).toBeUndefined();
    slots.release(a);
    slots.release(b);
    expect(slots.acquire('B')).toBe(b);
    slots.release(b);
    // C evicts A (used longer ago than B).
    expect(slots.acquire('C')).toBe(a);
  });
});
