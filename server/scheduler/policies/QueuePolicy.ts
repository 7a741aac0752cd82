import type { Generation } from '../Generation.js';

/** What a policy sees of the waiting generations. */
export type WaitingView = {
  /** Clients with waiting generations, in rotation order: the next to serve first. */
  ring: readonly string[];
  /** Each client's waiting generations, oldest first. */
  byClient: ReadonlyMap<string, readonly Generation[]>;
};

/** Orders the waiting generations: the first is served next, the rest learn their position. */
export type QueuePolicy = (waiting: WaitingView) => Generation[];
