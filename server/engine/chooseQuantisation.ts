import type { HubFile } from './hubFiles.js';

/** One model in a repository: a .gguf file, or the parts of a split one, with their total size. */
export type QuantisationCandidate = { file: string; sizeBytes: number; quantisation: string };

export type QuantisationChoice =
  | { chosen: QuantisationCandidate; candidates: QuantisationCandidate[] }
  | { chosen: undefined; candidates: QuantisationCandidate[] };

/**
 * The largest model in a repository for which `fits(sizeBytes)` holds: the more bits per weight, the
 * closer to the original, so the largest that fits is the best this machine can run. Vision
 * projectors (mmproj) and importance matrices are not models and are left out.
 */
export function chooseQuantisation(
  files: readonly HubFile[],
  fits: (sizeBytes: number) => boolean,
): QuantisationChoice {
  const candidates = candidatesOf(files).sort((a, b) => b.sizeBytes - a.sizeBytes);
  return { chosen: candidates.find((candidate) => fits(candidate.sizeBytes)), candidates };
}

export function candidatesOf(files: readonly HubFile[]): QuantisationCandidate[] {
  const models = new Map<string, QuantisationCandidate>();
  for (const { path, sizeBytes } of files) {
    const name = path.split('/').pop() ?? path;
    if (!/\.gguf$/i.test(name) || /mmproj|imatrix/i.test(name)) continue;
    const split = /^(.*)-(\d{5})-of-\d{5}\.gguf$/i.exec(path);
    const key = split?.[1] ?? path;
    const known = models.get(key);
    // A split model is named by its first part, which is what the downloader is given.
    const file = split === null || split[2] === '00001' ? path : (known?.file ?? path);
    models.set(key, { file, sizeBytes: (known?.sizeBytes ?? 0) + sizeBytes, quantisation: quantisationOf(name) });
  }
  return [...models.values()];
}

/** Q4_K_M, IQ2_XXS, F16, MXFP4, BF16 …, as the file name says it; the name itself when it says none. */
export function quantisationOf(fileName: string): string {
  const match = /(?:^|[-._])((?:UD-)?(?:I?Q\d(?:_[A-Z0-9]+)*|F16|F32|BF16|MXFP4(?:_MOE)?))(?=[-._])/i.exec(fileName);
  return match?.[1]?.toUpperCase() ?? fileName.replace(/\.gguf$/i, '');
}
