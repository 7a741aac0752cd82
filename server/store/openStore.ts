import { homedir, platform } from 'node:os';
import { join } from 'node:path';
import { nanoid } from 'nanoid';
import { MemoryStore } from './MemoryStore.js';
import { RedisStore } from './RedisStore.js';
import { SqliteStore } from './SqliteStore.js';
import type { Store } from './Store.js';

/** The SQLite file `--store sqlite` uses: the user's data directory, as each platform has it. */
export function defaultStorePath(home = homedir(), os = platform()): string {
  const dataDir =
    os === 'darwin'
      ? join(home, 'Library', 'Application Support')
      : os === 'win32'
        ? join(home, 'AppData', 'Local')
        : join(home, '.local', 'share');
  return join(dataDir, 'llm-chat-server', 'store.sqlite');
}

/**
 * Opens the store `--store` names (already validated by the config). Rejects with StoreOpenError,
 * naming the file or URL, when it cannot be used.
 */
export async function openStore(setting: string, { maxSessions }: { maxSessions: number }): Promise<Store> {
  if (setting === 'memory') return new MemoryStore({ maxSessions });
  if (setting === 'sqlite') return SqliteStore.open(defaultStorePath());
  if (setting.startsWith('sqlite:')) return SqliteStore.open(setting.slice('sqlite:'.length));
  return RedisStore.connect(setting, { instanceId: `i_${nanoid(12)}` });
}
