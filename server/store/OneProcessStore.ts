import type { StoredGeneration } from './Store.js';

/**
 * What the stores of one process (memory, SQLite) answer about other instances: there are none.
 * A generation not running here is no orphan to settle (SQLite settles a previous process's at
 * open), and a cancel has nowhere else to go.
 */
export abstract class OneProcessStore {
  abstract loadGeneration(genId: string): Promise<StoredGeneration | undefined>;

  settleOrphan(genId: string): Promise<StoredGeneration | undefined> {
    return this.loadGeneration(genId);
  }

  async requestCancel(): Promise<boolean> {
    return false;
  }

  onCancelRequest(): void {}
}
