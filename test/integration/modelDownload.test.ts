import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { type SpawnedServer, spawnServer } from '../../tooling/serverProcess.js';
import { MODEL_PATH } from '../../tooling/testModel.js';
import { FakeHub, sha256 } from '../helpers/FakeHub.js';

// The real download path (node-llama-cpp's resolveModelFile, its downloader and progress bar) against a
// local stand-in for the Hugging Face hub: HF_ENDPOINT points the server at it, as it would at a mirror.
const REPO = 'tester/tiny-GGUF';
const FILE = 'stories260K.gguf';
const HF_URI = `hf:${REPO}/${FILE}`;
/** Where node-llama-cpp keeps an `hf:owner/repo/file` download. */
const CACHED_NAME = 'hf_tester_tiny-GGUF_stories260K.gguf';

describe('downloading a model from the hub', () => {
  const bytes = readFileSync(MODEL_PATH);
  let hub: FakeHub;
  let cacheDir: string;
  const running: SpawnedServer[] = [];

  beforeAll(async () => {
    hub = await FakeHub.start();
    hub.addFile(`${REPO}/${FILE}`, bytes);
    hub.addFile(`${REPO}/stories260K.Q8_0.gguf`, bytes);
  });
  afterAll(() => hub.stop());
  beforeEach(() => {
    cacheDir = mkdtempSync(join(tmpdir(), 'llm-chat-models-'));
  });
  afterEach(async () => {
    for (const server of running.splice(0)) {
      server.child.kill('SIGKILL');
      await server.exited;
    }
    rmSync(cacheDir, { recursive: true, force: true });
  });

  const start = (model: string) => {
    const server = spawnServer([], { MODEL_PATH: '', MODEL: model, MODEL_CACHE_DIR: cacheDir, HF_ENDPOINT: hub.url });
    running.push(server);
    return server;
  };
  const stop = async (server: SpawnedServer) => {
    server.child.kill('SIGTERM');
    expect((await server.exited).code).toBe(0);
  };
  const cachedBytes = () => readFileSync(join(cacheDir, CACHED_NAME));
  /** Every .gguf under the cache, staging folder included: what a later start could find and load. */
  const ggufFilesInCache = () =>
    readdirSync(cacheDir, { recursive: true, encoding: 'utf8' }).filter((name) => name.endsWith('.gguf'));

  it('downloads an hf: model once with a progress bar, serves it, and starts from the cache after', async () => {
    const first = start(HF_URI);
    await first.ready();
    const log = first.output.join('\n');
    expect(log).toContain(`Downloading to ${cacheDir}`);
    expect(log).toMatch(/\d+(\.\d+)?% \(/);
    expect(logEntry(first, 'model downloaded and verified')).toMatchObject({
      path: join(cacheDir, CACHED_NAME),
      bytes: bytes.length,
      sha256: sha256(bytes),
    });
    expect(sha256(cachedBytes())).toBe(sha256(bytes));
    // Made in a staging folder and moved in once checked: nothing else is left in the cache.
    expect(readdirSync(cacheDir)).toEqual([CACHED_NAME]);
    const ready = await fetch(`http://127.0.0.1:${await first.port()}/readyz`);
    expect(await ready.json()).toMatchObject({ status: 'ready', model: { modelName: CACHED_NAME.slice(0, -5) } });
    await stop(first);

    const asked = hub.requests.length;
    const second = start(HF_URI);
    await second.ready();
    expect(hub.requests.length).toBe(asked);
    expect(second.output.join('\n')).not.toContain('Downloading');
    await stop(second);
  });

  it('resolves an hf: quantisation tag through the hub manifest to the file it names', async () => {
    const server = start(`hf:${REPO}:Q8_0`);
    await server.ready();
    expect(hub.requests.map((request) => request.path)).toContain(`/v2/${REPO}/manifests/Q8_0`);
    expect(hub.downloadsOf(`${REPO}/stories260K.Q8_0.gguf`).length).toBeGreaterThan(0);
    const files = readdirSync(cacheDir);
    expect(files).toEqual(['hf_tester_tiny.Q8_0.gguf']);
    expect(sha256(readFileSync(join(cacheDir, files[0] ?? '')))).toBe(sha256(bytes));
    await stop(server);
  });

  it('downloads a model given by a plain URL once, and starts from the cache after', async () => {
    const url = `${hub.url}/cdn/${REPO}/${FILE}`;
    const first = start(url);
    await first.ready();
    // Named after the URL's file, so that the next start finds it without asking the network.
    expect(readdirSync(cacheDir)).toEqual([FILE]);
    expect(sha256(readFileSync(join(cacheDir, FILE)))).toBe(sha256(bytes));
    await stop(first);

    const asked = hub.requests.length;
    const second = start(url);
    await second.ready();
    expect(hub.requests.length).toBe(asked);
    await stop(second);
  });

  it('starts the download over when the connection drops half-way, and never keeps a truncated file', async () => {
    const cut = hub.cutDownloads(`${REPO}/${FILE}`, { afterBytes: bytes.length >> 1, times: 1, ending: 'drop' });
    const before = hub.downloadsOf(`${REPO}/${FILE}`).length;
    const server = start(HF_URI);
    await cut;
    await server.ready();
    expect(sha256(cachedBytes())).toBe(sha256(bytes));
    const ranges = hub
      .downloadsOf(`${REPO}/${FILE}`)
      .slice(before)
      .map((request) => request.range);
    expect(ranges.filter((range) => range !== undefined).length).toBeGreaterThanOrEqual(2);
    await stop(server);
  });

  it('leaves no model file when killed mid-download, and the next start completes it', async () => {
    const stalled = hub.cutDownloads(`${REPO}/${FILE}`, { afterBytes: bytes.length >> 1, times: 1, ending: 'stall' });
    const killed = start(HF_URI);
    await stalled;
    killed.child.kill('SIGKILL');
    await killed.exited;
    // Only the downloader's own partial file may remain, in the staging folder: never a .gguf a start would load.
    expect(ggufFilesInCache()).toEqual([]);

    const next = start(HF_URI);
    await next.ready();
    expect(sha256(cachedBytes())).toBe(sha256(bytes));
    expect(readdirSync(cacheDir)).toEqual([CACHED_NAME]);
    await stop(next);
  });

  it.each([
    ['corrupted', /has sha256 [0-9a-f]{64} where the server announced [0-9a-f]{64}/],
    ['truncated', /is \d+ bytes where the server announced \d+/],
  ] as const)(
    'refuses a %s download, exits 1 and keeps nothing of it; the next start downloads it whole',
    async (how, why) => {
      hub.damage(`${REPO}/${FILE}`, how);
      try {
        const refused = start(HF_URI);
        expect((await refused.exited).code).toBe(1);
        const output = refused.output.join('\n');
        expect(output).toMatch(why);
        expect(output).toContain('it was deleted, not used');
        expect(output).not.toContain('model loaded; ready');
        expect(ggufFilesInCache()).toEqual([]);
      } finally {
        hub.repair(`${REPO}/${FILE}`);
      }
      const next = start(HF_URI);
      await next.ready();
      expect(sha256(cachedBytes())).toBe(sha256(bytes));
      await stop(next);
    },
  );
});

describe('choosing the quantisation of an hf:owner/repo model by memory', () => {
  const bytes = readFileSync(MODEL_PATH);
  const QUANTS_REPO = 'tester/quants-GGUF';
  const GB = 1_000_000_000;
  let hub: FakeHub;
  let cacheDir: string;
  const running: SpawnedServer[] = [];

  beforeAll(async () => {
    hub = await FakeHub.start();
    // The listing sizes them as a 20B model's quantisations; each serves the tiny model.
    hub.addFile(`${QUANTS_REPO}/tiny.Q2_K.gguf`, bytes, { listedSize: 2 * GB });
    hub.addFile(`${QUANTS_REPO}/tiny.Q4_K_M.gguf`, bytes, { listedSize: 4 * GB });
    hub.addFile(`${QUANTS_REPO}/tiny.Q8_0.gguf`, bytes, { listedSize: 8 * GB });
    hub.addFile(`${QUANTS_REPO}/README.md`, Buffer.from('# tiny quantisations'));
  });
  afterAll(() => hub.stop());
  beforeEach(() => {
    cacheDir = mkdtempSync(join(tmpdir(), 'llm-chat-models-'));
  });
  afterEach(async () => {
    for (const server of running.splice(0)) {
      server.child.kill('SIGKILL');
      await server.exited;
    }
    rmSync(cacheDir, { recursive: true, force: true });
  });

  // On the CPU, so that the memory limit bounds the one pool the choice is made in on any machine.
  const start = (memoryLimit: string, hfEndpoint = hub.url) => {
    const env = { MODEL_PATH: '', MODEL: `hf:${QUANTS_REPO}`, MODEL_CACHE_DIR: cacheDir, HF_ENDPOINT: hfEndpoint };
    const server = spawnServer(['--memory-limit', memoryLimit, '--gpu', 'cpu'], env);
    running.push(server);
    return server;
  };

  it('picks the largest quantisation that fits the memory, says so, downloads only it, and reuses it, offline too', async () => {
    const server = start('6GB');
    await server.ready();
    const chosen = logEntry(server, (msg) => msg.startsWith('chose '));
    expect(chosen).toMatchObject({
      repo: QUANTS_REPO,
      file: 'tiny.Q4_K_M.gguf',
      quantisation: 'Q4_K_M',
      sizeBytes: 4 * GB,
    });
    expect(chosen.msg).toMatch(
      /^chose Q4_K_M \(4\.00 GB\) of tester\/quants-GGUF: the largest quantisation that fits 6\.00 GB free/,
    );
    expect(chosen.available).toEqual(['Q8_0 8.00 GB', 'Q4_K_M 4.00 GB', 'Q2_K 2.00 GB']);
    expect(readdirSync(cacheDir)).toEqual(['hf_tester_quants-GGUF_tiny.Q4_K_M.gguf']);
    expect(hub.downloadsOf(`${QUANTS_REPO}/tiny.Q8_0.gguf`)).toEqual([]);
    const ready = await fetch(`http://127.0.0.1:${await server.port()}/readyz`);
    expect(await ready.json()).toMatchObject({ model: { modelName: 'hf_tester_quants-GGUF_tiny.Q4_K_M' } });
    server.child.kill('SIGTERM');
    expect((await server.exited).code).toBe(0);

    // The next start chooses again and finds its choice in the cache; offline, it serves that choice.
    const downloaded = hub.downloadsOf(`${QUANTS_REPO}/tiny.Q4_K_M.gguf`).length;
    const again = start('6GB');
    await again.ready();
    expect(hub.downloadsOf(`${QUANTS_REPO}/tiny.Q4_K_M.gguf`).length).toBe(downloaded);
    again.child.kill('SIGTERM');
    expect((await again.exited).code).toBe(0);
    const offline = start('6GB', 'http://127.0.0.1:9');
    await offline.ready();
    expect(logEntry(offline, (msg) => msg.startsWith('the hub is not reachable'))).toMatchObject({
      path: join(cacheDir, 'hf_tester_quants-GGUF_tiny.Q4_K_M.gguf'),
    });
  });

  it('exits 1 naming the repository when the hub does not know it', async () => {
    const server = spawnServer([], {
      MODEL_PATH: '',
      MODEL: 'hf:tester/no-such-GGUF',
      MODEL_CACHE_DIR: cacheDir,
      HF_ENDPOINT: hub.url,
    });
    running.push(server);
    expect((await server.exited).code).toBe(1);
    expect(server.output.join('\n')).toContain('Cannot list the files of "tester/no-such-GGUF"');
  });

  it('exits 1 naming the smallest quantisation and what is free when none fits, and downloads nothing', async () => {
    const server = start('1GB');
    expect((await server.exited).code).toBe(1);
    const output = server.output.join('\n');
    expect(output).toMatch(
      /No quantisation of tester\/quants-GGUF fits in memory: the smallest, Q2_K \(tiny\.Q2_K\.gguf\)/,
    );
    expect(output).toContain('--memory-limit caps it at 1.00 GB');
    expect(output).toContain('Lower --context-size or --max-concurrent');
    expect(readdirSync(cacheDir)).toEqual([]);
  });
});

/** The first JSON log line whose message is `msg` (or passes it), parsed. */
function logEntry(
  server: SpawnedServer,
  msg: string | ((msg: string) => boolean),
): Record<string, unknown> & { msg: string } {
  const matches = typeof msg === 'string' ? (text: string) => text === msg : msg;
  for (const line of server.output) {
    if (!line.startsWith('{')) continue;
    const entry = JSON.parse(line) as Record<string, unknown> & { msg: string };
    if (matches(entry.msg)) return entry;
  }
  throw new Error(`No log line ${String(msg)} in:\n${server.output.join('\n')}`);
}
