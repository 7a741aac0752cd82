import type { Generation } from '../Generation.js';
import type { QueuePolicy } from './QueuePolicy.js';

/**
 * Serves clients in turn, one generation each per round, so a client that floods the queue
 * waits behind its own requests, not in front of everyone else's.
 */
export const roundRobin: QueuePolicy = ({ ring, byClient }) => {
  const order: Generation[] = [];
  const queues = ring.map((client) => byClient.get(client) ?? []);
  const rounds = Math.max(0, ...queues.map((queue) => queue.length));
  for (let round = 0; round < rounds; round++) {
    for (const queue of queues) {
      const generation = queue[round];
      if (generation !== undefined) order.push(generation);
    }
  }
  return order;
};
