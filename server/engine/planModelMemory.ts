import { GgufInsights, type GgufInsightsResourceRequirements, type Llama, readGgufFileInfo } from 'node-llama-cpp';
import type { EngineMemory } from './Engine.js';
import { fitMemory, formatBytes, type Memory } from './fitMemory.js';
import { type FreeMemory, machineMemory } from './machineMemory.js';
import { NotEnoughMemoryError } from './modelErrors.js';

/** The smallest context the fitting shrinks to before it refuses: less would hold too little of a chat. */
export const MIN_FITTED_CONTEXT = 1024;

export type MemoryPlanRequest = {
  modelPath: string;
  contextSize: number;
  sequences: number;
  memoryLimitBytes?: number;
};

/** What loading will use, chosen before it, with the estimate and the free memory it was fitted to. */
export type MemoryPlan = {
  contextSize: number;
  sequences: number;
  askedContextSize: number;
  gpuLayers: number;
  needed: Memory;
  /** Of `needed`: the weights, and the context (KV cache and compute buffers). */
  modelBytes: number;
  contextBytes: number;
  free: FreeMemory;
};

/**
 * Estimates the model's memory from its GGUF (node-llama-cpp's insights: the weights on CPU and GPU,
 * the KV cache and compute buffers of `sequences` × context) and fits the context size and GPU layers
 * to free memory; throws NotEnoughMemoryError when even the smallest context does not fit.
 */
export async function planModelMemory(llama: Llama, request: MemoryPlanRequest): Promise<MemoryPlan> {
  const insights = await GgufInsights.from(await readGgufFileInfo(request.modelPath), llama);
  const askedContextSize = Math.min(request.contextSize, insights.trainContextSize ?? request.contextSize);
  const free = await machineMemory(llama, request.memoryLimitBytes);
  const { sequences } = request;
  const fit = fitMemory({
    contextSize: askedContextSize,
    minContextSize: MIN_FITTED_CONTEXT,
    sequences,
    offloadableLayers: llama.gpu === false || !llama.supportsGpuOffloading ? 0 : insights.totalLayers,
    estimate: (gpuLayers, contextSize) => ({
      model: toMemory(insights.estimateModelResourceRequirements({ gpuLayers })),
      context: toMemory(
        insights.estimateContextResourceRequirements({ contextSize, modelGpuLayers: gpuLayers, sequences }),
      ),
    }),
    free,
  });
  if (!fit.fits) throw new NotEnoughMemoryError(fit.advice);
  return {
    contextSize: fit.contextSize,
    sequences,
    askedContextSize,
    gpuLayers: fit.gpuLayers,
    needed: fit.needed,
    modelBytes: fit.parts.model.ramBytes + fit.parts.model.vramBytes,
    contextBytes: fit.parts.context.ramBytes + fit.parts.context.vramBytes,
    free,
  };
}

/** One line for the log: the estimate against free memory, and what was chosen. */
export function describePlan(plan: MemoryPlan): string {
  const needed =
    formatBytes(plan.needed.ramBytes) +
    (plan.free.vramBytes > 0 ? ` RAM + ${formatBytes(plan.needed.vramBytes)} VRAM` : ' RAM');
  const free =
    formatBytes(plan.free.ramBytes) +
    (plan.free.vramBytes > 0 ? ` RAM + ${formatBytes(plan.free.vramBytes)} VRAM` : ' RAM');
  const shrunk = plan.contextSize < plan.askedContextSize ? `, shrunk from ${plan.askedContextSize} to fit` : '';
  const where = plan.free.vramBytes > 0 ? `${plan.gpuLayers} layers on the GPU` : 'on the CPU';
  return (
    `memory: the model needs ${needed} (${formatBytes(plan.modelBytes)} weights, ${formatBytes(plan.contextBytes)} context) ` +
    `of ${free} free${plan.free.limitBytes === undefined ? '' : ' under --memory-limit'}; context ${plan.contextSize} tokens × ${plan.sequences} sequences${shrunk}; ${where}`
  );
}

/** The plan as EngineInfo shows it (/readyz) and the start logs it. */
export function engineMemory(plan: MemoryPlan): EngineMemory {
  return {
    contextSize: plan.contextSize,
    askedContextSize: plan.askedContextSize,
    sequences: plan.sequences,
    gpuLayers: plan.gpuLayers,
    modelBytes: plan.modelBytes,
    contextBytes: plan.contextBytes,
    neededRamBytes: plan.needed.ramBytes,
    neededVramBytes: plan.needed.vramBytes,
    freeRamBytes: plan.free.ramBytes,
    freeVramBytes: plan.free.vramBytes,
    ...(plan.free.limitBytes === undefined ? {} : { limitBytes: plan.free.limitBytes }),
  };
}

function toMemory({ cpuRam, gpuVram }: GgufInsightsResourceRequirements): Memory {
  return { ramBytes: Math.ceil(cpuRam), vramBytes: Math.ceil(gpuVram) };
}
