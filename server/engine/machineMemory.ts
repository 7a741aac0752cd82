import type { Llama } from 'node-llama-cpp';
import type { Memory } from './fitMemory.js';

export type FreeMemory = Memory & {
  /** RAM and VRAM are one pool (Apple Silicon): a byte counts once. */
  unified: boolean;
  /** `--memory-limit`, when set: neither RAM nor VRAM is planned past it. */
  limitBytes?: number;
};

/**
 * Memory free for a model now: free RAM and VRAM less node-llama-cpp's safety padding (its own
 * checks keep the same margin), each capped at `limitBytes`. The cap is also set on `llama`, so that
 * node-llama-cpp's checks at load agree with the plan.
 */
export async function machineMemory(llama: Llama, limitBytes: number | undefined): Promise<FreeMemory> {
  const [ram, vram] = await Promise.all([llama.getRamState(), llama.getVramState()]);
  const cap = (bytes: number) => Math.max(0, Math.min(bytes, limitBytes ?? Number.POSITIVE_INFINITY));
  if (limitBytes !== undefined) {
    await llama.setRamCap(limitBytes);
    await llama.setVramCap(limitBytes);
  }
  const gpu = llama.gpu !== false;
  return {
    ramBytes: cap(ram.free - llama.ramPaddingSize),
    vramBytes: gpu ? cap(vram.free - llama.vramPaddingSize) : 0,
    unified: gpu && vram.unifiedSize > 0,
    ...(limitBytes === undefined ? {} : { limitBytes }),
  };
}
