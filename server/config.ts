import { availableParallelism, homedir } from 'node:os';
import { join } from 'node:path';
import { z } from 'zod';
import { parseByteSize } from './cli/parseByteSize.js';
import { FlagError, kebabCase, parseFlags } from './cli/parseFlags.js';
import { parseUpstreamSettings, type UpstreamSetting } from './engine/upstream/parseUpstreamSettings.js';
import { PACKAGE_ROOT } from './packageRoot.js';
import { QUEUE_POLICY_NAMES } from './scheduler/policies/resolveQueuePolicy.js';

/** The tiny model committed with the project (models/README.md), so a fresh clone serves offline. */
export const EMBEDDED_MODEL_PATH = join(PACKAGE_ROOT, 'models', 'stories260K.gguf');

/**
 * Every setting of the server, validated once at start. Each field can be given as a flag
 * (`--max-queued 32`) or an environment variable (`MAX_QUEUED=32`); flags win.
 */
const ConfigFields = z.object({
  /** Socket library: `uws` (uWebSockets.js) or `ws` (Node's http and the ws package). Defaults to `uws`. */
  transport: z.enum(['uws', 'ws']).default('uws'),
  /** Interface to listen on. Defaults to `127.0.0.1`. */
  host: z.string().default('127.0.0.1'),
  /** Port to listen on; 0 picks a free one. Defaults to `8080`. */
  port: z.coerce.number().int().min(0).max(65535).default(8080),
  /** A local .gguf file; wins over `model`. */
  modelPath: z.string().optional(),
  /**
   * A local .gguf path, or an `hf:` URI or URL downloaded once into `modelCacheDir`. Defaults to
   * the 1.2 MB model committed in models/.
   */
  model: z.string().default(EMBEDDED_MODEL_PATH),
  /**
   * OpenAI-compatible inference servers (vLLM, llama-server, this server) that run the
   * generations instead of a local model: comma-separated base URLs, each with optional settings
   * in its fragment, `http://gpu-1:8000/v1#slots=16&apiKeyEnv=GPU_KEY`. With any, `model` and
   * `modelPath` are ignored. Defaults to none (the local model).
   */
  upstream: z
    .union([z.string(), z.array(z.union([z.string(), z.object({ url: z.string() }).loose()]))])
    .default([])
    .transform((value, ctx) => {
      const parsed = parseUpstreamEntries(value);
      if ('errors' in parsed) for (const message of parsed.errors) ctx.addIssue({ code: 'custom', message });
      return 'settings' in parsed ? parsed.settings : [];
    }),
  /** How often each upstream is checked (`GET <url>/models`); a failing one is left out until a check passes. Defaults to `2000`. */
  upstreamHealthIntervalMs: z.coerce.number().int().min(50).default(2000),
  /**
   * An upstream's answer that sends nothing for this long fails: it is retried on another
   * upstream before its first token, and ends with `upstream_error` after it. Defaults to `30000`.
   */
  upstreamIdleTimeoutMs: z.coerce.number().int().min(50).default(30_000),
  /**
   * How long a cancel waits for the upstream's own gauge of running generations to show it
   * stopped before `cancel.ack` goes out: exact while this server is the upstream's only client,
   * a wait of this long on every cancel when others share it (set 0 then). Defaults to `500`.
   */
  upstreamCancelWaitMs: z.coerce.number().int().min(0).default(500),
  /** How long the start waits for a first upstream to list a model before it fails (exit 1). Defaults to `60000`. */
  upstreamStartTimeoutMs: z.coerce.number().int().min(0).default(60_000),
  /** Where downloaded models are kept. Defaults to `~/.cache/llm-chat-server/models`. */
  modelCacheDir: z.string().default(join(homedir(), '.cache', 'llm-chat-server', 'models')),
  /**
   * The Hugging Face hub `hf:` models come from: a mirror, or a local one (`HF_ENDPOINT`, the name
   * llama.cpp and node-llama-cpp read; the one setting both the download and its reachability check
   * use). Defaults to `https://huggingface.co/`.
   */
  hfEndpoint: z.url().default('https://huggingface.co/'),
  /**
   * Where conversations are kept: `sqlite` (the default file), `sqlite:PATH`, `redis://HOST:PORT/DB`
   * (`rediss://` for TLS; many instances share one) or `memory` (nothing outlives the process).
   * Defaults to `sqlite`, in the user's data directory.
   */
  store: z
    .string()
    .default('sqlite')
    .refine((value) => /^(memory|sqlite|sqlite:.+|rediss?:\/\/.+)$/.test(value), {
      message: 'must be memory, sqlite, sqlite:PATH or redis://HOST:PORT/DB',
    }),
  /** GPU backend: auto picks Metal, CUDA or Vulkan when present. Defaults to `auto`. */
  gpu: z.enum(['auto', 'metal', 'cuda', 'vulkan', 'cpu']).default('auto'),
  /** CPU threads for llama.cpp. Defaults to max(1, cores − 1): one core stays with the event loop. */
  threads: z.coerce
    .number()
    .int()
    .min(1)
    .default(Math.max(1, availableParallelism() - 1)),
  /**
   * Tokens of context per sequence, capped at the model's training context; shrunk (halving, to no
   * less than 1024) when it does not fit free memory. Defaults to `4096`.
   */
  contextSize: z.coerce.number().int().min(64).default(4096),
  /**
   * The most memory the model may be planned to use, RAM and VRAM each, in bytes or with a unit
   * (`16GB`, `12GiB`): the context and GPU layers are fitted under it, a model that cannot fit is
   * refused (exit 1), and `MODEL=hf:owner/repo` picks the largest quantisation under it. For a machine
   * shared with other work, or a container whose limit the free-memory reading does not see.
   * Defaults to none: the machine's free memory.
   */
  memoryLimit: z
    .union([z.number(), z.string()])
    .optional()
    .transform((value, ctx) => {
      if (value === undefined) return undefined;
      const bytes = typeof value === 'number' ? value : parseByteSize(value);
      if (bytes !== undefined && bytes > 0) return bytes;
      ctx.addIssue({ code: 'custom', message: `must be a size such as 16GB, 12GiB or 800MB, not "${value}"` });
      return undefined;
    }),
  /**
   * Generations decoded at once (context sequences, batched together). Defaults to 16 on a GPU
   * and 8 on CPU, where batching 8–16 sequences roughly doubles aggregate throughput.
   */
  maxConcurrent: z.coerce.number().int().min(1).max(256).optional(),
  /** Generations waiting for a sequence, server-wide; past it `queue_full`. Defaults to `64`. */
  maxQueued: z.coerce.number().int().min(0).default(64),
  /** Generations one client (API key, else connection) may have waiting. Defaults to `16`. */
  maxQueuedPerClient: z.coerce.number().int().min(0).default(16),
  /** Order of the queue: `round-robin` across clients, or `fifo`. Defaults to `round-robin`. */
  queuePolicy: z.enum(QUEUE_POLICY_NAMES).default('round-robin'),
  /**
   * How long the generations of a dropped connection go on, buffered, waiting for the client to
   * come back and resume them; 0 cancels them at once. Defaults to `15000`.
   */
  resumeGraceMs: z.coerce.number().int().min(0).default(15_000),
  /** Completion tokens when a request names none. Defaults to `512`. */
  defaultMaxTokens: z.coerce.number().int().min(1).default(512),
  /** Largest `maxTokens` a request may ask for. Defaults to `4096`. */
  maxTokens: z.coerce.number().int().min(1).default(4096),
  /** Longest a generation may run before it ends with finish `timeout`. Defaults to `120000`. */
  maxGenerationMs: z.coerce.number().int().min(1).default(120_000),
  /**
   * Largest WebSocket frame accepted, in bytes; bigger closes with 1009 (and past 4× this the
   * socket is cut without a close frame). Defaults to `65536`.
   */
  maxFrameBytes: z.coerce
    .number()
    .int()
    .min(1024)
    .default(64 * 1024),
  /**
   * Largest HTTP request body, in bytes (413 past it): parsing is synchronous, so it is kept to
   * what a prompt needs. Defaults to `262144` (256 KiB).
   */
  maxBodyBytes: z.coerce
    .number()
    .int()
    .min(1024)
    .default(256 * 1024),
  /** Longest `content` or `system` text, in characters. Defaults to `32000`. */
  maxMessageChars: z.coerce.number().int().min(1).default(32_000),
  /** Sessions one connection may hold open. Defaults to `32`. */
  maxSessionsPerConnection: z.coerce.number().int().min(1).default(32),
  /** Sessions kept server-wide (least recently used leave first). Defaults to `10000`. */
  maxSessions: z.coerce.number().int().min(1).default(10_000),
  /** An unused session is forgotten after this long. Defaults to `1800000` (30 min). */
  sessionTtlMs: z.coerce
    .number()
    .int()
    .min(1000)
    .default(30 * 60_000),
  /** Bytes buffered for a slow client before it is closed. Defaults to `1048576`. */
  maxBackpressureBytes: z.coerce
    .number()
    .int()
    .min(16 * 1024)
    .default(1024 * 1024),
  /** Seconds without traffic before a connection is closed (pings keep it alive). Defaults to `120`. */
  idleTimeoutSec: z.coerce.number().int().min(8).default(120),
  /** Bad frames tolerated per `badFrameWindowMs` before close 1008. Defaults to `20`. */
  maxBadFrames: z.coerce.number().int().min(1).default(20),
  /** Window over which bad frames are counted. Defaults to `10000`. */
  badFrameWindowMs: z.coerce.number().int().min(100).default(10_000),
  /** On SIGTERM, how long running generations may go on before they are cancelled. Defaults to `10000`. */
  shutdownGraceMs: z.coerce.number().int().min(0).default(10_000),
  /** Folder served at `/`: the built web demo and widget (`npm run build:web`). Defaults to `web-demo/dist`. */
  staticDir: z.string().default(defaultStaticDir()),
  /** API keys, comma-separated (named key-1, key-2, …). None (and no file) runs the server open. */
  apiKeys: z.string().optional(),
  /** A JSON file of keys: `[{"name": "bot-a", "key": "…"}]` or `{"name", "sha256"}` entries. */
  apiKeysFile: z.string().optional(),
  /**
   * Browser origins allowed to open a WebSocket, comma-separated (`*` for any). The server's own
   * origin is always allowed; clients that send no Origin (bots) are not affected. Defaults to none.
   */
  allowedOrigins: z
    .union([z.array(z.string()), z.string()])
    .default([])
    .transform((value) =>
      (typeof value === 'string' ? value.split(',') : value)
        .map((origin) => origin.trim())
        .filter((origin) => origin !== ''),
    ),
  /** How long a browser ticket from POST /v1/tickets stays valid. Defaults to `30000`. */
  ticketTtlMs: z.coerce.number().int().min(1000).default(30_000),
  /** Open connections per key. Defaults to `1000`. */
  maxConnectionsPerKey: z.coerce.number().int().min(1).default(1000),
  /**
   * Sessions kept per key (all loopback clients together in open mode), well below
   * `maxSessions` so that no key crowds out another's. Defaults to a tenth of `maxSessions` (1000).
   */
  maxSessionsPerKey: z.coerce.number().int().min(1).optional(),
  /** Characters of system prompt and history one session may hold (past it `session_full`). Defaults to `256000`. */
  maxSessionChars: z.coerce.number().int().min(1).default(256_000),
  /** Characters of system prompts and history all of one key's sessions may hold. Defaults to `32000000`. */
  maxHistoryCharsPerKey: z.coerce.number().int().min(1).default(32_000_000),
  /** `generation.resume` requests per minute per key (per connection in open mode); each replays a whole answer. Defaults to `60`. */
  resumesPerMinute: z.coerce.number().int().min(1).default(60),
  /** Generations queued or running at once per key. Defaults to `64`. */
  maxConcurrentPerKey: z.coerce.number().int().min(1).default(64),
  /** chat.send requests per minute per key. Defaults to `600`. */
  requestsPerMinute: z.coerce.number().int().min(1).default(600),
  /** Prompt + completion tokens per minute per key. Defaults to `1000000`. */
  tokensPerMinute: z.coerce.number().int().min(1).default(1_000_000),
  /**
   * Above this many bytes waiting for a client, its token frames are coalesced (nothing is
   * dropped; `seq` stays exact). Defaults to `65536`.
   */
  coalesceAboveBytes: z.coerce
    .number()
    .int()
    .min(1024)
    .default(64 * 1024),
  /** pino log level. Defaults to `info`. */
  logLevel: z.enum(['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent']).default('info'),
});

/** The fields, then the defaults that derive from other settings, then the bounds between settings. */
export const ConfigSchema = ConfigFields.transform((fields, ctx) => {
  const config = { ...fields, maxSessionsPerKey: fields.maxSessionsPerKey ?? Math.ceil(fields.maxSessions / 10) };
  type Count = 'maxSessionsPerKey' | 'maxSessions' | 'maxMessageChars' | 'maxSessionChars' | 'maxHistoryCharsPerKey';
  const bound = (field: Count, over: Count) => {
    if (config[field] <= config[over]) return;
    const message = `must be at most --${kebabCase(over)} (${config[over]}), not ${config[field]}`;
    ctx.addIssue({ code: 'custom', path: [field], message });
  };
  bound('maxSessionsPerKey', 'maxSessions');
  bound('maxMessageChars', 'maxSessionChars');
  bound('maxSessionChars', 'maxHistoryCharsPerKey');
  return config;
});

export type Config = z.infer<typeof ConfigSchema>;
export type ConfigInput = z.input<typeof ConfigSchema>;

/** Builds the config from command-line flags and environment variables. */
export function loadConfig(argv: readonly string[], env: NodeJS.ProcessEnv): Config {
  const raw: Record<string, unknown> = {};
  for (const key of Object.keys(ConfigFields.shape)) {
    const fromEnv = env[toEnvName(key)];
    // An empty variable reads as unset, except a key setting: that must never mean "run open".
    if (fromEnv !== undefined && (fromEnv !== '' || KEY_SETTINGS.has(key))) raw[key] = fromEnv;
  }
  try {
    Object.assign(raw, parseFlags(argv, Object.keys(ConfigFields.shape)));
  } catch (error) {
    throw error instanceof FlagError ? new ConfigError(error.message) : error;
  }
  return parseConfig(raw, env);
}

/**
 * Checks settings given in code (createChatServer) or read from flags and variables; ConfigError
 * names each bad one. `env` holds the variables that upstream API keys are read from.
 */
export function parseConfig(input: ConfigInput, env: NodeJS.ProcessEnv = process.env): Config {
  const parsed = ConfigSchema.safeParse(input);
  if (!parsed.success) throw configError(parsed.error.issues);
  const missing = parsed.data.upstream.filter(
    (setting) => setting.apiKey === undefined && setting.apiKeyEnv !== undefined && !env[setting.apiKeyEnv],
  );
  if (missing.length > 0) {
    const issues = missing.map((setting) => ({
      path: ['upstream'],
      message: `${setting.url}: the variable ${setting.apiKeyEnv} named by apiKeyEnv is not set`,
    }));
    throw configError(issues);
  }
  for (const setting of parsed.data.upstream) {
    if (setting.apiKey === undefined && setting.apiKeyEnv !== undefined) setting.apiKey = env[setting.apiKeyEnv];
  }
  return parsed.data;
}

function configError(issues: ReadonlyArray<{ path: readonly PropertyKey[]; message: string }>): ConfigError {
  const lines = issues.map((issue) => {
    const key = String(issue.path[0]);
    return `  --${kebabCase(key)} (${toEnvName(key)}): ${issue.message}`;
  });
  return new ConfigError(`Invalid configuration:\n${lines.join('\n')}`);
}

/** Upstreams as flags and variables give them (a comma-separated string), or as code does (strings or settings). */
function parseUpstreamEntries(
  value: string | ReadonlyArray<string | { url: string }>,
): { settings: UpstreamSetting[] } | { errors: string[] } {
  const settings: UpstreamSetting[] = [];
  const errors: string[] = [];
  for (const entry of typeof value === 'string' ? [value] : value) {
    const parsed = parseUpstreamSettings(typeof entry === 'string' ? entry : entry.url);
    if ('errors' in parsed) errors.push(...parsed.errors);
    // A setting given as an object (or parsed before) keeps its other fields; its URL's fragment wins.
    else if (typeof entry === 'string') settings.push(...parsed.settings);
    else settings.push(...parsed.settings.map((setting) => ({ ...(entry as UpstreamSetting), ...setting })));
  }
  const urls = settings.map((setting) => setting.url);
  for (const [index, url] of urls.entries()) if (urls.indexOf(url) !== index) errors.push(`${url} is named twice`);
  return errors.length > 0 ? { errors } : { settings };
}

const KEY_SETTINGS = new Set(['apiKeys', 'apiKeysFile']);

export class ConfigError extends Error {
  override name = 'ConfigError';
}

function toEnvName(key: string): string {
  return key.replace(/[A-Z]/g, (c) => `_${c}`).toUpperCase();
}

function defaultStaticDir(): string {
  return join(PACKAGE_ROOT, 'web-demo', 'dist');
}
