import { GgufInsights, getLlama, readGgufFileInfo } from 'node-llama-cpp';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { type SpawnedServer, spawnServer } from '../../tooling/serverProcess.js';
import { MODEL_PATH } from '../../tooling/testModel.js';

// The start fits the context and GPU layers to free memory, estimated from the GGUF before loading.
// On the CPU, with --memory-limit standing for a machine of a given size: node-llama-cpp's own
// estimate of the tiny model tells which limits hold which context.
const SEQUENCES = 8;
const settings = ['--gpu', 'cpu', '--max-concurrent', String(SEQUENCES), '--context-size', '2048'];

describe('fitting the model to memory at start', () => {
  const running: SpawnedServer[] = [];
  /** Bytes node-llama-cpp estimates for the weights, and for the context at a size (× SEQUENCES). */
  let weights: number;
  let contextAt: (size: number) => number;

  beforeAll(async () => {
    const llama = await getLlama({ gpu: false, build: 'never' });
    const insights = await GgufInsights.from(await readGgufFileInfo(MODEL_PATH), llama);
    weights = insights.estimateModelResourceRequirements({ gpuLayers: 0 }).cpuRam;
    contextAt = (size) =>
      insights.estimateContextResourceRequirements({ contextSize: size, modelGpuLayers: 0, sequences: SEQUENCES })
        .cpuRam;
    await llama.dispose();
  });
  afterEach(async () => {
    for (const server of running.splice(0)) {
      server.child.kill('SIGKILL');
      await server.exited;
    }
  });

  const start = (memoryLimit?: number) => {
    const limit = memoryLimit === undefined ? [] : ['--memory-limit', String(Math.floor(memoryLimit))];
    const server = spawnServer([...settings, ...limit]);
    running.push(server);
    return server;
  };
  const memoryLine = (server: SpawnedServer) =>
    server.output.map((line) => JSON.parse(line)).find((entry) => entry.msg?.startsWith('memory: '));

  it('logs the estimate against free memory in one line, and shows it in /readyz', async () => {
    const server = start();
    await server.ready();
    const line = memoryLine(server);
    expect(line.memory).toMatchObject({
      contextSize: 2048,
      askedContextSize: 2048,
      sequences: SEQUENCES,
      gpuLayers: 0,
    });
    expect(line.memory.neededRamBytes).toBeGreaterThanOrEqual(Math.floor(weights + contextAt(2048)));
    expect(line.memory.freeRamBytes).toBeGreaterThan(line.memory.neededRamBytes);
    expect(line.memory.modelBytes).toBe(Math.ceil(weights));
    expect(line.memory.contextBytes).toBe(Math.ceil(contextAt(2048)));
    expect(line.msg).toMatch(
      /^memory: the model needs [\d.]+ MB RAM \(1\.17 MB weights, [\d.]+ MB context\) of [\d.]+ GB RAM free; context 2048 tokens × 8 sequences; on the CPU$/,
    );
    const ready = await (await fetch(`http://127.0.0.1:${await server.port()}/readyz`)).json();
    expect(ready.model).toMatchObject({ contextSize: 2048, memory: line.memory });
  });

  it('shrinks the context to what fits under --memory-limit, and says which it chose', async () => {
    const server = start(weights + (contextAt(1024) + contextAt(2048)) / 2);
    await server.ready();
    const line = memoryLine(server);
    expect(line.memory).toMatchObject({ contextSize: 1024, askedContextSize: 2048 });
    expect(line.msg).toContain('context 1024 tokens × 8 sequences, shrunk from 2048 to fit');
    const ready = await (await fetch(`http://127.0.0.1:${await server.port()}/readyz`)).json();
    expect(ready.model.contextSize).toBe(1024);
  });

  it('exits 1 naming --max-concurrent and --context-size when the weights fit but no context does', async () => {
    const server = start(weights + contextAt(1024) / 2);
    expect((await server.exited).code).toBe(1);
    const output = server.output.join('\n');
    expect(output).toMatch(/The model does not fit in memory: it needs at least [\d.]+ MB \(1\.17 MB for the weights/);
    expect(output).toContain('Lower --max-concurrent (now 8) or --context-size (now 2048)');
    expect(output).toMatch(/--memory-limit caps it at [\d.]+ MB/);
    expect(output).not.toContain('model loaded; ready');
  });

  it('exits 1 naming a smaller quantisation when the weights alone do not fit', async () => {
    const server = start(weights / 2);
    expect((await server.exited).code).toBe(1);
    const output = server.output.join('\n');
    expect(output).toContain('Use a smaller quantisation of the model');
    expect(output).not.toContain('--context-size');
  });
});
