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

  it('downloads an hf: model once with a progress bar, serves it, and starts from the cache after', async () => {
    const first = start(HF_URI);
    await first.ready();
    const log = first.output.join('\n');
    expect(log).toContain(`Downloading to ${cacheDir}`);
    expect(log).toMatch(/\d+(\.\d+)?% \(/);
    expect(log).toContain(`Downloaded to ${join(cacheDir, CACHED_NAME)}`);
    expect(sha256(cachedBytes())).toBe(sha256(bytes));
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
    // Only the downloader's own partial file may remain: never a .gguf the next start would load.
    expect(readdirSync(cacheDir).filter((name) => name.endsWith('.gguf'))).toEqual([]);

    const next = start(HF_URI);
    await next.ready();
    expect(sha256(cachedBytes())).toBe(sha256(bytes));
    expect(readdirSync(cacheDir)).toEqual([CACHED_NAME]);
    await stop(next);
  });
});
