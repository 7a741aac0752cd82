import type { LlamaModel } from 'node-llama-cpp';

/**
 * Flash attention from this model size up. On the 85 M synthetic model (CPU, one thread, the
 * local build) it made a decode of 8 sequences' tokens cost 36 ms of CPU instead of 63, and one
 * token 9 instead of 11; but it adds about 0.15 ms to every decode, more than a whole decode of
 * a toy model (stories260K: 0.25 ms a token, 0.39 with it).
 */
const FLASH_ATTENTION_MIN_BYTES = 64 * 1024 * 1024;

export function wantsFlashAttention(model: LlamaModel): boolean {
  return model.size >= FLASH_ATTENTION_MIN_BYTES;
}
