import type { QueuePolicy } from './QueuePolicy.js';

/** Serves in arrival order, whoever asked: the baseline fairness is measured against. */
export const firstComeFirstServed: QueuePolicy = ({ byClient }) =>
  [...byClient.values()].flat().sort((a, b) => a.createdAt - b.createdAt);
