import { GgufInsights, getLlama, type Llama, LlamaLogLevel, readGgufFileInfo } from 'node-llama-cpp';
import type { Logger } from '../log.js';
import { chooseQuantisation, type QuantisationCandidate } from './chooseQuantisation.js';
import { formatBytes } from './fitMemory.js';
import { fileUrlOf, listHubFiles } from './hubFiles.js';
import { type FreeMemory, machineMemory } from './machineMemory.js';
import { ModelNotFoundError, NotEnoughMemoryError } from './modelErrors.js';

export type RepoPickSource = {
  hfEndpoint: string;
  gpu: 'auto' | 'metal' | 'cuda' | 'vulkan' | 'cpu';
  contextSize: number;
  maxConcurrent?: number;
  memoryLimit?: number;
};

/**
 * For `MODEL=hf:owner/repo`: the largest quantisation in the repository whose weights (its file
 * size) and context (KV cache and buffers for `contextSize` × sequences, estimated from a header
 * the quantisations share) fit free RAM and VRAM; as the `hf:` URI of its file.
 */
export async function pickRepoQuantisation(repo: string, source: RepoPickSource, log?: Logger): Promise<string> {
  const files = await listHubFiles(source.hfEndpoint, repo);
  const llama = await getLlama({
    gpu: source.gpu === 'cpu' ? false : source.gpu,
    logLevel: LlamaLogLevel.error,
    build: 'never',
  });
  try {
    const free = await machineMemory(llama, source.memoryLimit);
    const capacity = free.unified ? Math.max(free.ramBytes, free.vramBytes) : free.ramBytes + free.vramBytes;
    const sequences = source.maxConcurrent ?? (llama.gpu === false ? 8 : 16);
    const any = chooseQuantisation(files, () => true);
    const smallest = any.candidates.at(-1);
    if (smallest === undefined) throw new ModelNotFoundError(`The repository "${repo}" holds no .gguf model.`);
    const contextBytes = await contextBytesOf(`hf:${repo}/${smallest.file}`, { ...source, llama, sequences });
    const choice = chooseQuantisation(files, (sizeBytes) => sizeBytes + contextBytes <= capacity);
    if (choice.chosen === undefined) throw tooBig(repo, smallest, contextBytes, free);
    const { file, quantisation, sizeBytes } = choice.chosen;
    const available = choice.candidates.map(
      (candidate) => `${candidate.quantisation} ${formatBytes(candidate.sizeBytes)}`,
    );
    log?.info(
      { repo, file, quantisation, sizeBytes, contextBytes, freeBytes: capacity, available },
      `chose ${quantisation} (${formatBytes(sizeBytes)}) of ${repo}: the largest quantisation that fits ` +
        `${formatBytes(capacity)} free with ${formatBytes(contextBytes)} of context`,
    );
    return `hf:${repo}/${file}`;
  } finally {
    await llama.dispose();
  }
}

/** The context's memory, from one quantisation's header: all of a repository's share the architecture. */
async function contextBytesOf(
  model: string,
  { hfEndpoint, llama, contextSize, sequences }: RepoPickSource & { llama: Llama; sequences: number },
): Promise<number> {
  const url = await fileUrlOf(model, hfEndpoint);
  const info = await readGgufFileInfo(url, { logWarnings: false, endpoints: { huggingFace: hfEndpoint } });
  const insights = await GgufInsights.from(info, llama);
  const size = Math.min(contextSize, insights.trainContextSize ?? contextSize);
  const need = insights.estimateContextResourceRequirements({ contextSize: size, modelGpuLayers: 0, sequences });
  return Math.ceil(need.cpuRam + need.gpuVram);
}

function tooBig(repo: string, smallest: QuantisationCandidate, contextBytes: number, free: FreeMemory): Error {
  const limit = free.limitBytes === undefined ? '' : ` (--memory-limit caps it at ${formatBytes(free.limitBytes)})`;
  return new NotEnoughMemoryError(
    `No quantisation of ${repo} fits in memory: the smallest, ${smallest.quantisation} (${smallest.file}), needs ` +
      `${formatBytes(smallest.sizeBytes + contextBytes)} with its context and ${formatBytes(free.ramBytes)} RAM ` +
      `+ ${formatBytes(free.vramBytes)} VRAM is free${limit}. Lower --context-size or --max-concurrent, ` +
      'or name a smaller model.',
  );
}
