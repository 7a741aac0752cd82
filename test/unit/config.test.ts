import { mkdtempSync, writeFileSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ApiKeys } from '../../server/auth/ApiKeys.js';
import { ConfigError, EMBEDDED_MODEL_PATH, loadConfig } from '../../server/config.js';

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

  it('refuses unknown flags and invalid values with a message naming the flag, its variable and the nearest flag', () => {
    expect(() => loadConfig(['--max-qeued', '1'], {})).toThrow(ConfigError);
    expect(() => loadConfig(['--max-qeued', '1'], {})).toThrow('Unknown flag --max-qeued; did you mean --max-queued?');
    expect(() => loadConfig(['--colour', 'red'], {})).toThrow(/^Unknown flag --colour$/);
    expect(() => loadConfig(['--port'], {})).toThrow('Flag --port needs a value');
    expect(() => loadConfig([], { PORT: 'eighty' })).toThrow(/--port \(PORT\):/);
    expect(() => loadConfig(['--gpu', 'tpu'], {})).toThrow(/--gpu \(GPU\):/);
  });
});

describe('bounds between settings', () => {
  it('keeps sessions per key at a tenth of the server-wide bound by default, and refuses more than it', () => {
    expect(loadConfig([], {})).toMatchObject({ maxSessions: 10_000, maxSessionsPerKey: 1000 });
    expect(loadConfig(['--max-sessions', '50'], {}).maxSessionsPerKey).toBe(5);
    expect(() => loadConfig(['--max-sessions', '50', '--max-sessions-per-key', '51'], {})).toThrow(
      /--max-sessions-per-key \(MAX_SESSIONS_PER_KEY\): must be at most --max-sessions/,
    );
    expect(() => loadConfig(['--max-session-chars', '10'], {})).toThrow(/--max-message-chars/);
  });
});

describe('open mode', () => {
  const keysOf = (argv: string[], env: NodeJS.ProcessEnv) => {
    const config = loadConfig(argv, env);
    const keys = ApiKeys.load(config.apiKeys, config.apiKeysFile);
    keys.assertSafeToListen(config.host);
    return keys;
  };

  it('refuses to listen beyond loopback without API keys', () => {
    expect(() => keysOf(['--host', '0.0.0.0'], {})).toThrow(/without API keys/);
    expect(keysOf(['--host', '0.0.0.0'], { API_KEYS: 'sk-0123456789abcdef' }).enabled).toBe(true);
    expect(keysOf([], {}).enabled).toBe(false);
    expect(loadConfig([], {}).host).toBe('127.0.0.1');
  });

  it('refuses a key setting that holds no key instead of running open', () => {
    expect(() => keysOf(['--host', '0.0.0.0'], { API_KEYS: ',' })).toThrow(ConfigError);
    expect(() => keysOf([], { API_KEYS: ' , ' })).toThrow(/API_KEYS.*holds no key/);
    expect(() => keysOf([], { API_KEYS: '' })).toThrow(/API_KEYS.*holds no key/);
    const file = join(mkdtempSync(join(tmpdir(), 'keys-')), 'keys.json');
    writeFileSync(file, '[]');
    expect(() => keysOf(['--host', '0.0.0.0'], { API_KEYS_FILE: file })).toThrow(/holds no key/);
  });
});

describe('model', () => {
  it('defaults to the model committed in models/, so a fresh clone serves offline', () => {
    expect(loadConfig([], {}).model).toBe(EMBEDDED_MODEL_PATH);
    expect(EMBEDDED_MODEL_PATH).toMatch(/models\/stories260K\.gguf$/);
  });
});
