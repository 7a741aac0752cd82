import { firstComeFirstServed } from './firstComeFirstServed.js';
import type { QueuePolicy } from './QueuePolicy.js';
import { roundRobin } from './roundRobin.js';

export const QUEUE_POLICY_NAMES = ['round-robin', 'fifo'] as const;
export type QueuePolicyName = (typeof QUEUE_POLICY_NAMES)[number];

export function resolveQueuePolicy(name: QueuePolicyName): QueuePolicy {
  switch (name) {
    case 'round-robin':
      return roundRobin;
    case 'fifo':
      return firstComeFirstServed;
    default:
      return name satisfies never;
  }
}
