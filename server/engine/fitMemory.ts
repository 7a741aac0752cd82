/** Bytes of system RAM and of GPU memory. */
export type Memory = { ramBytes: number; vramBytes: number };

/** What a model needs at one setting: its weights, and the context's KV cache and compute buffers. */
export type MemoryNeed = { model: Memory; context: Memory };

export type FitRequest = {
  /** Tokens per sequence asked for (already capped at the model's training context). */
  contextSize: number;
  /** The smallest context the fitting may shrink to; it never goes below this or above `contextSize`. */
  minContextSize: number;
  sequences: number;
  /** Layers that can go to the GPU: the model's layer count (plus its output layer), 0 without a GPU. */
  offloadableLayers: number;
  /** What the model and the context need with `gpuLayers` on the GPU and `contextSize` tokens per sequence. */
  estimate: (gpuLayers: number, contextSize: number) => MemoryNeed;
  /** Memory free for the model (after any cap); on unified memory RAM and VRAM are one pool. */
  free: Memory & { unified: boolean; limitBytes?: number };
};

export type MemoryFit =
  | { fits: true; contextSize: number; gpuLayers: number; needed: Memory; parts: MemoryNeed }
  | { fits: false; advice: string; needed: Memory };

/**
 * The largest context (halving from the one asked for down to the minimum) and, at it, the most GPU
 * layers that fit free memory; or, when even the minimum context does not fit, a refusal that names
 * what to lower. A pure function of the estimates, so that the policy is tested without a machine.
 */
export function fitMemory(request: FitRequest): MemoryFit {
  for (const contextSize of contextSizesToTry(request)) {
    for (let gpuLayers = request.offloadableLayers; gpuLayers >= 0; gpuLayers--) {
      const parts = request.estimate(gpuLayers, contextSize);
      const needed = total(parts);
      if (fitsIn(needed, request.free)) return { fits: true, contextSize, gpuLayers, needed, parts };
    }
  }
  return refusal(request);
}

/** The context sizes to try, largest first: the one asked for, then halves down to the minimum. */
export function contextSizesToTry({ contextSize, minContextSize }: Pick<FitRequest, 'contextSize' | 'minContextSize'>) {
  const floor = Math.min(minContextSize, contextSize);
  const sizes = [contextSize];
  for (let size = Math.floor(contextSize / 2); size > floor; size = Math.floor(size / 2)) sizes.push(size);
  if (floor < contextSize) sizes.push(floor);
  return sizes;
}

function total({ model, context }: MemoryNeed): Memory {
  return { ramBytes: model.ramBytes + context.ramBytes, vramBytes: model.vramBytes + context.vramBytes };
}

function fitsIn(needed: Memory, free: FitRequest['free']): boolean {
  if (free.unified) return needed.ramBytes + needed.vramBytes <= Math.max(free.ramBytes, free.vramBytes);
  return needed.ramBytes <= free.ramBytes && needed.vramBytes <= free.vramBytes;
}

/**
 * Says what to lower: the weights alone not fitting calls for a smaller quantisation (a shorter
 * context would not help); else the context and sequences, with the weights' share.
 */
function refusal(request: FitRequest): MemoryFit {
  const smallest = request.estimate(0, Math.min(request.minContextSize, request.contextSize));
  const needed = total(smallest);
  const freeBytes = request.free.unified
    ? Math.max(request.free.ramBytes, request.free.vramBytes)
    : request.free.ramBytes + request.free.vramBytes;
  const weights = smallest.model.ramBytes + smallest.model.vramBytes;
  const context = smallest.context.ramBytes + smallest.context.vramBytes;
  const minContext = Math.min(request.minContextSize, request.contextSize);
  const head =
    `The model does not fit in memory: it needs at least ${formatBytes(weights + context)} ` +
    `(${formatBytes(weights)} for the weights, ${formatBytes(context)} for ${minContext} tokens of context ` +
    `× ${request.sequences} sequences) and ${formatBytes(freeBytes)} is free${limitNote(request.free.limitBytes)}.`;
  const advice =
    weights >= freeBytes
      ? `${head} Use a smaller quantisation of the model (say Q4_K_M instead of Q8_0), or a machine with more memory.`
      : `${head} Lower --max-concurrent (now ${request.sequences}) or --context-size (now ${request.contextSize}), ` +
        'or use a smaller quantisation of the model.';
  return { fits: false, advice, needed };
}

function limitNote(limitBytes: number | undefined): string {
  return limitBytes === undefined ? '' : ` (--memory-limit caps it at ${formatBytes(limitBytes)})`;
}

/** 1.5 GB, 320 MB, 12 kB: decimal units, as model files are sized on the hub. */
export function formatBytes(bytes: number): string {
  const units = ['B', 'kB', 'MB', 'GB', 'TB'];
  let value = bytes;
  let unit = 0;
  while (value >= 1000 && unit < units.length - 1) {
    value /= 1000;
    unit++;
  }
  return `${unit === 0 ? value : value.toFixed(value < 10 ? 2 : 1)} ${units[unit]}`;
}
