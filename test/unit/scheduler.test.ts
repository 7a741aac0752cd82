import { describe, expect, it } from 'vitest';
import type { Engine, EngineRequest, EngineResult } from '../../server/engine/Engine.js';
import type { GenerationEvent } from '../../server/scheduler/Generation.js';
import { Scheduler, SchedulerRefusal } from '../../server/scheduler/Scheduler.js';

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
      const finish = (stop: EngineResult['stop']) => resolve({ stop, promptTokens: 4, completionTokens: 1 });
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
    ownerKey: 'k',
    messages: [],
    params: { maxTokens: 8 },
  });
  generation.subscribe((event) => events.push(event));
  scheduler.pump();
  return generation;
}

const tick = () => new Promise((resolve) => setImmediate(resolve));

describe('Scheduler (with a scripted engine double)', () => {
  it('runs one generation per sequence and queues the rest in order, with positions', async () => {
    const engine = new ScriptedEngine();
    const scheduler = new Scheduler(engine, { maxQueued: 10, maxGenerationMs: 10_000 });
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

  it('refuses past maxQueued with queue_full and a retryAfterMs estimate', () => {
    const scheduler = new Scheduler(new ScriptedEngine(), { maxQueued: 1, maxGenerationMs: 10_000 });
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
    const scheduler = new Scheduler(new ScriptedEngine(), { maxQueued: 10, maxGenerationMs: 10_000 });
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
    const scheduler = new Scheduler(engine, { maxQueued: 10, maxGenerationMs: 20 });
    const a = submit(scheduler, 'a');
    await new Promise((resolve) => setTimeout(resolve, 60));
    expect(a.outcome?.finish).toBe('timeout');
    expect(scheduler.runningCount).toBe(0);
  });

  it('on drain refuses new work, cancels the queued and waits for the running', async () => {
    const engine = new ScriptedEngine();
    const scheduler = new Scheduler(engine, { maxQueued: 10, maxGenerationMs: 10_000 });
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
