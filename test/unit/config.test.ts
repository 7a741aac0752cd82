import { availableParallelism } from 'node:os';
import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../../server/config.js';

describe('config', () => {
  it('leaves one core to the event loop by default', () => {
    expect(loadConfig([], {}).threads).toBe(Math.max(1, availableParallelism() - 1));
  });

  it('reads environment variables by their SCREAMING_SNAKE names and lets flags win', () => {
    const config = loadConfig(['--max-queued', '7', '--port=0'], {
      MAX_QUEUED: '3',
      THREADS: '2',
      MODEL_PATH: 'm.gguf',
    });
    expect(config).toMatchObject({ maxQueued: 7, port: 0, threads: 2, modelPath: 'm.gguf' });
  });

  it('refuses unknown flags and invalid values with a message naming them', () => {
    expect(() => loadConfig(['--max-qeued', '1'], {})).toThrow(ConfigError);
    expect(() => loadConfig(['--max-qeued', '1'], {})).toThrow(/--max-qeued/);
    expect(() => loadConfig([], { PORT: 'eighty' })).toThrow(/port/);
    expect(() => loadConfig(['--gpu', 'tpu'], {})).toThrow(/gpu/);
  });
});

describe('open mode', () => {
  it('refuses to listen beyond loopback without API keys', () => {
    expect(() => loadConfig(['--host', '0.0.0.0'], {})).toThrow(/without API keys/);
    expect(loadConfig(['--host', '0.0.0.0'], { API_KEYS: 'sk-0123456789abcdef' }).host).toBe('0.0.0.0');
    expect(loadConfig([], {}).host).toBe('127.0.0.1');
  });
});
