import { describe, expect, it } from 'vitest';
import { parseByteSize } from '../../server/cli/parseByteSize.js';
import { ConfigError, loadConfig } from '../../server/config.js';
import { contextSizesToTry, type FitRequest, fitMemory, formatBytes } from '../../server/engine/fitMemory.js';

const MB = 1_000_000;

/**
 * A model of 10 layers with 100 MB of weights each, and a KV cache of 1 kB per token per layer per
 * sequence: each layer's share goes where the layer runs (VRAM when offloaded, else RAM).
 */
function model(free: FitRequest['free'], overrides: Partial<FitRequest> = {}): FitRequest {
  const layers = 10;
  return {
    contextSize: 8192,
    minContextSize: 1024,
    sequences: 4,
    offloadableLayers: layers,
    estimate: (gpuLayers, contextSize) => {
      const perLayerContext = contextSize * 4 * 1000;
      return {
        model: { ramBytes: (layers - gpuLayers) * 100 * MB, vramBytes: gpuLayers * 100 * MB },
        context: { ramBytes: (layers - gpuLayers) * perLayerContext, vramBytes: gpuLayers * perLayerContext },
      };
    },
    free,
    ...overrides,
  };
}

describe('fitting a model to free memory', () => {
  it('keeps the asked context with every layer on the GPU when both fit', () => {
    const fit = fitMemory(model({ ramBytes: 16_000 * MB, vramBytes: 24_000 * MB, unified: false }));
    expect(fit).toMatchObject({ fits: true, contextSize: 8192, gpuLayers: 10 });
    expect(fit.needed).toEqual({ ramBytes: 0, vramBytes: 10 * (100 * MB + 8192 * 4000) });
  });

  it('puts fewer layers on the GPU before it shrinks the context', () => {
    // One layer with its context is 132.8 MB: 700 MB of VRAM holds 5.
    const fit = fitMemory(model({ ramBytes: 16_000 * MB, vramBytes: 700 * MB, unified: false }));
    expect(fit).toMatchObject({ fits: true, contextSize: 8192, gpuLayers: 5 });
  });

  it('halves the context until it fits, and says which it chose', () => {
    // All on the CPU: 1000 MB of weights, 40 kB per token of context: 1200 MB holds 4096 tokens, not 8192.
    const fit = fitMemory(model({ ramBytes: 1200 * MB, vramBytes: 0, unified: false }, { offloadableLayers: 0 }));
    expect(fit).toMatchObject({ fits: true, contextSize: 4096, gpuLayers: 0 });
  });

  it('counts a byte once on unified memory, where RAM and VRAM are one pool', () => {
    const free = { ramBytes: 1400 * MB, vramBytes: 1400 * MB, unified: true };
    expect(fitMemory(model(free))).toMatchObject({ fits: true, contextSize: 8192, gpuLayers: 10 });
    expect(fitMemory(model({ ...free, ramBytes: 1000 * MB, vramBytes: 1000 * MB }))).toMatchObject({ fits: false });
  });

  it('refuses naming the context and sequences when the weights fit but no context does', () => {
    const fit = fitMemory(model({ ramBytes: 1020 * MB, vramBytes: 0, unified: false }, { offloadableLayers: 0 }));
    expect(fit.fits).toBe(false);
    if (fit.fits) return;
    expect(fit.advice).toContain('Lower --max-concurrent (now 4) or --context-size (now 8192)');
    expect(fit.advice).toContain('1.04 GB (1.00 GB for the weights, 41.0 MB for 1024 tokens of context × 4 sequences)');
    expect(fit.advice).toContain('1.02 GB is free');
  });

  it('refuses naming a smaller quantisation when the weights alone do not fit', () => {
    const fit = fitMemory(model({ ramBytes: 900 * MB, vramBytes: 0, unified: false, limitBytes: 900 * MB }));
    expect(fit.fits).toBe(false);
    if (fit.fits) return;
    expect(fit.advice).toContain('Use a smaller quantisation');
    expect(fit.advice).toContain('(--memory-limit caps it at 900.0 MB)');
    expect(fit.advice).not.toContain('--context-size');
  });

  it('tries the asked context, its halves, then the minimum, and never less than a context asked below it', () => {
    expect(contextSizesToTry({ contextSize: 8192, minContextSize: 1024 })).toEqual([8192, 4096, 2048, 1024]);
    expect(contextSizesToTry({ contextSize: 3000, minContextSize: 1024 })).toEqual([3000, 1500, 1024]);
    expect(contextSizesToTry({ contextSize: 512, minContextSize: 1024 })).toEqual([512]);
  });

  it('writes sizes in decimal units, as the hub sizes files', () => {
    expect(formatBytes(512)).toBe('512 B');
    expect(formatBytes(1_171_200)).toBe('1.17 MB');
    expect(formatBytes(12_100_000_000)).toBe('12.1 GB');
  });
});

describe('the memory limit setting', () => {
  it('reads sizes with decimal and binary units, and plain byte counts', () => {
    expect(parseByteSize('16GB')).toBe(16e9);
    expect(parseByteSize('1.5 GiB')).toBe(1.5 * 2 ** 30);
    expect(parseByteSize('800mb')).toBe(800e6);
    expect(parseByteSize('4096')).toBe(4096);
    for (const bad of ['', 'lots', '-1GB', '12 parsecs', '1e9']) expect(parseByteSize(bad)).toBeUndefined();
  });

  it('is a flag and a variable, unset by default, and refuses what is not a size', () => {
    expect(loadConfig([], {}).memoryLimit).toBeUndefined();
    expect(loadConfig(['--memory-limit', '12GiB'], {}).memoryLimit).toBe(12 * 2 ** 30);
    expect(loadConfig([], { MEMORY_LIMIT: '8GB' }).memoryLimit).toBe(8e9);
    expect(() => loadConfig(['--memory-limit', 'lots'], {})).toThrow(ConfigError);
    expect(() => loadConfig(['--memory-limit', '0'], {})).toThrow(/--memory-limit \(MEMORY_LIMIT\): must be a size/);
  });
});
