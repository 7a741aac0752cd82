import type Database from 'libsql';
import { StoreOpenError } from './Store.js';

/** Marks the file as ours (PRAGMA application_id), so another program's database is refused. */
export const APPLICATION_ID = 0x6c6c6d63; // "llmc"

/**
 * The schema, one entry a version: entry i migrates version i to i + 1. Append, never edit: a
 * file is migrated forward from whatever version it holds, in one transaction.
 */
export const MIGRATIONS: readonly string[] = [
  `CREATE TABLE sessions (
     id TEXT PRIMARY KEY,
     owner TEXT NOT NULL,
     token_hash TEXT NOT NULL,
     chars INTEGER NOT NULL,
     active_gen TEXT,
     ttl_ms INTEGER NOT NULL,
     expires_at INTEGER NOT NULL
   );
   CREATE INDEX sessions_by_owner ON sessions (owner, expires_at);
   CREATE INDEX sessions_by_expiry ON sessions (expires_at);
   CREATE TABLE messages (
     session_id TEXT NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
     idx INTEGER NOT NULL,
     role TEXT NOT NULL,
     content TEXT NOT NULL,
     finish TEXT,
     PRIMARY KEY (session_id, idx)
   ) WITHOUT ROWID;
   CREATE TABLE generations (
     id TEXT PRIMARY KEY,
     session_id TEXT NOT NULL,
     owner TEXT NOT NULL,
     user_json TEXT NOT NULL,
     outcome_json TEXT,
     ttl_ms INTEGER NOT NULL,
     expires_at INTEGER
   );
   CREATE INDEX generations_by_expiry ON generations (expires_at);
   CREATE TABLE chunks (
     gen_id TEXT NOT NULL REFERENCES generations (id) ON DELETE CASCADE,
     seq INTEGER NOT NULL,
     text TEXT NOT NULL,
     channel TEXT NOT NULL,
     PRIMARY KEY (gen_id, seq)
   ) WITHOUT ROWID;
   CREATE TABLE tickets (hash TEXT PRIMARY KEY, key_name TEXT NOT NULL, expires_at INTEGER NOT NULL);`,
  // 2: responses of the Responses API, kept for previous_response_id.
  `CREATE TABLE responses (id TEXT PRIMARY KEY, owner TEXT NOT NULL, body TEXT NOT NULL, expires_at INTEGER NOT NULL);
   CREATE INDEX responses_by_expiry ON responses (expires_at);`,
  // 3: a message's tool calls or tool results (JSON); NULL on every message before them.
  'ALTER TABLE messages ADD COLUMN tools_json TEXT;',
];

/** Brings the file's schema to the last of `migrations` (the real ones but in tests), refusing a file that is not ours or is newer. */
export function migrate(db: Database.Database, path: string, migrations: readonly string[] = MIGRATIONS): void {
  const pragma = (name: string) => Number((db.prepare(`PRAGMA ${name}`).get() as Record<string, unknown>)[name]);
  const applicationId = pragma('application_id');
  const version = pragma('user_version');
  const isEmpty = Number((db.prepare('SELECT COUNT(*) AS n FROM sqlite_schema').get() as { n: number }).n) === 0;
  if (applicationId !== APPLICATION_ID && !(applicationId === 0 && isEmpty)) {
    throw new StoreOpenError(`Cannot open the store ${path}: it is an SQLite database of another program`);
  }
  const latest = migrations.length;
  if (version > latest) {
    throw new StoreOpenError(
      `Cannot open the store ${path}: it was written by a newer version of this server (schema ${version}, ` +
        `this one knows up to ${latest}); upgrade the server, or point --store elsewhere`,
    );
  }
  if (version === latest) return;
  db.transaction(() => {
    for (const migration of migrations.slice(version)) db.exec(migration);
    db.exec(`PRAGMA application_id = ${APPLICATION_ID}`);
    db.exec(`PRAGMA user_version = ${latest}`);
  })();
}
