/** One OpenAI-compatible inference server to send generations to (`--upstream`). */
export type UpstreamSetting = {
  /** Its OpenAI base URL, without a trailing slash: `http://gpu-1:8000/v1`. */
  url: string;
  /** Generations it runs at once; discovered when absent (llama-server, this server), else 8. */
  slots?: number;
  /** The environment variable that holds its API key (sent as `Authorization: Bearer`). */
  apiKeyEnv?: string;
  /** The key itself: from `apiKeyEnv` (the config reads it), or given in code. Never logged. */
  apiKey?: string;
};

const FRAGMENT_KEYS = ['slots', 'apiKeyEnv'] as const;
const MAX_SLOTS = 4096;

/**
 * `--upstream`: comma-separated base URLs, each with optional settings in its fragment
 * (`http://gpu-1:8000/v1#slots=16&apiKeyEnv=GPU_KEY`). Returns the settings, or the problems.
 */
export function parseUpstreamSettings(value: string): { settings: UpstreamSetting[] } | { errors: string[] } {
  const entries = value
    .split(',')
    .map((entry) => entry.trim())
    .filter((entry) => entry !== '');
  if (entries.length === 0) return { errors: ['holds no URL'] };
  const settings: UpstreamSetting[] = [];
  const errors: string[] = [];
  for (const entry of entries) {
    const parsed = parseUpstreamSetting(entry);
    if (typeof parsed === 'string') errors.push(parsed);
    else if (settings.some((known) => known.url === parsed.url)) errors.push(`${parsed.url} is named twice`);
    else settings.push(parsed);
  }
  return errors.length > 0 ? { errors } : { settings };
}

/** One entry: the setting, or what is wrong with it (never echoing credentials). */
export function parseUpstreamSetting(entry: string): UpstreamSetting | string {
  let url: URL;
  try {
    url = new URL(entry);
  } catch {
    return `"${entry.split('#')[0]?.slice(0, 100)}" is not a URL`;
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') return `${url.protocol} is not http: or https:`;
  if (url.username !== '' || url.password !== '') return 'credentials do not belong in the URL: use #apiKeyEnv=VAR';
  if (url.search !== '') return `${url.origin}${url.pathname} must have no query`;
  const path = url.pathname.replace(/\/+$/, '');
  const setting: UpstreamSetting = { url: `${url.origin}${path === '' ? '/v1' : path}` };
  for (const [key, raw] of new URLSearchParams(url.hash.slice(1))) {
    if (key === 'slots') {
      const slots = Number(raw);
      if (!Number.isInteger(slots) || slots < 1 || slots > MAX_SLOTS) {
        return `${setting.url}: slots must be a whole number from 1 to ${MAX_SLOTS}, not "${raw.slice(0, 20)}"`;
      }
      setting.slots = slots;
    } else if (key === 'apiKeyEnv') {
      if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(raw)) return `${setting.url}: apiKeyEnv must name a variable`;
      setting.apiKeyEnv = raw;
    } else {
      return `${setting.url}: unknown setting "${key.slice(0, 40)}" (known: ${FRAGMENT_KEYS.join(', ')})`;
    }
  }
  return setting;
}

/** The server's root, where health, readiness and metrics live: the base URL without its `/v1`. */
export function rootOf(url: string): string {
  return url.replace(/\/v1$/, '');
}
