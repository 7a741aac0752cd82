import type { ServerFrame } from './serverFrames.js';

/** Every server frame type of v1 (a test keeps it equal to the schema's). */
export const SERVER_FRAME_TYPES: readonly ServerFrame['type'][] = [
  'welcome',
  'session.opened',
  'session.closed',
  'generation.queued',
  'generation.started',
  'token',
  'generation.done',
  'tool.call',
  'cancel.ack',
  'error',
  'pong',
  'rate_limits',
  'server.notice',
];

const known = new Set<string>(SERVER_FRAME_TYPES);

/**
 * One server text frame as a ServerFrame, or undefined when it is not JSON or not a v1 frame.
 * Light on purpose (no schema library), so that browsers can carry it: the server is trusted to
 * send what the schemas say, and the tests check that it does.
 */
export function decodeServerFrame(text: string): ServerFrame | undefined {
  try {
    const value = JSON.parse(text) as { type?: unknown } | null;
    return typeof value?.type === 'string' && known.has(value.type) ? (value as ServerFrame) : undefined;
  } catch {
    return undefined;
  }
}
