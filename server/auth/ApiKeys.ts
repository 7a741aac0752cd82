import { createHash, timingSafeEqual } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { z } from 'zod';
import { ConfigError } from '../config.js';

/** A key as configured: its secret (or only the secret's SHA-256), and a name safe to log. */
const KeyEntry = z.union([
  z.object({ name: z.string().min(1).max(64), key: z.string().min(16) }),
  z.object({ name: z.string().min(1).max(64), sha256: z.string().regex(/^[0-9a-f]{64}$/) }),
]);
const KeyFile = z.array(KeyEntry);

type StoredKey = { name: string; hash: Buffer };

/**
 * The API keys the server accepts. Only SHA-256 hashes are kept; a presented key is hashed and
 * compared with every stored hash in constant time.
 */
export class ApiKeys {
  private constructor(private readonly keys: readonly StoredKey[]) {}

  /**
   * From `API_KEYS` (comma-separated secrets, named key-1, key-2, …) and/or a JSON key file. A
   * setting that is given but holds no key is a ConfigError: it must never fall back to open mode.
   */
  static load(inline: string | undefined, file: string | undefined): ApiKeys {
    const keys: StoredKey[] = [];
    if (inline !== undefined) {
      const secrets = inline
        .split(',')
        .map((secret) => secret.trim())
        .filter((secret) => secret !== '');
      if (secrets.length === 0) throw new ConfigError('API_KEYS (--api-keys) is set but holds no key');
      for (const [index, secret] of secrets.entries()) keys.push({ name: `key-${index + 1}`, hash: sha256(secret) });
    }
    if (file !== undefined) {
      const entries = readKeyFile(file);
      if (entries.length === 0) throw new ConfigError(`The API key file ${file} (--api-keys-file) holds no key`);
      for (const entry of entries) {
        keys.push({ name: entry.name, hash: 'key' in entry ? sha256(entry.key) : Buffer.from(entry.sha256, 'hex') });
      }
    }
    return new ApiKeys(keys);
  }

  /**
   * Without keys anyone who reaches the server may use it, so it may only listen on a loopback
   * address. Decided on the keys actually loaded, never on the raw settings.
   */
  assertSafeToListen(host: string): void {
    if (this.enabled || isLoopbackAddress(host)) return;
    throw new ConfigError(
      `Refusing to listen on ${host} without API keys: anyone could use the model. ` +
        'Set API_KEYS or API_KEYS_FILE, or listen on 127.0.0.1.',
    );
  }

  get enabled(): boolean {
    return this.keys.length > 0;
  }

  /** The name of the key, or undefined when it is not one of ours. */
  verify(presented: string): string | undefined {
    const hash = sha256(presented);
    let match: string | undefined;
    for (const key of this.keys) if (timingSafeEqual(key.hash, hash)) match ??= key.name;
    return match;
  }
}

/** The entries of a key file; its content never reaches an error message (it holds secrets). */
function readKeyFile(file: string): z.infer<typeof KeyFile> {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch {
    throw new ConfigError(`Cannot read the API key file ${file}`);
  }
  try {
    return KeyFile.parse(JSON.parse(text));
  } catch {
    throw new ConfigError(
      `The API key file ${file} is not valid: expected a JSON array of {"name", "key"} or {"name", "sha256"} entries`,
    );
  }
}

/** The token of an `Authorization: Bearer <token>` header, if that is what it is. */
export function bearerToken(header: string | undefined): string | undefined {
  const match = /^Bearer\s+(\S+)\s*$/i.exec(header ?? '');
  return match?.[1];
}

function isLoopbackAddress(host: string): boolean {
  return host === 'localhost' || host === '::1' || /^127\.\d+\.\d+\.\d+$/.test(host);
}

function sha256(value: string): Buffer {
  return createHash('sha256').update(value).digest();
}
