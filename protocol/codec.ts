import type { z } from 'zod';
import { CLIENT_FRAME_TYPES, ClientFrame } from './clientFrames.js';
import type { ErrorCode } from './errorCodes.js';
import type { ServerFrame } from './serverFrames.js';

export type DecodeFailure = {
  ok: false;
  code: Extract<ErrorCode, 'bad_json' | 'bad_frame' | 'unknown_type'>;
  message: string;
  id?: string;
};
export type DecodeResult = { ok: true; frame: ClientFrame } | DecodeFailure;

const knownTypes = new Set<string>(CLIENT_FRAME_TYPES);

/** Parses and validates one client text frame; never throws. */
export function decodeClientFrame(text: string): DecodeResult {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return { ok: false, code: 'bad_json', message: 'Frame is not valid JSON' };
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    return { ok: false, code: 'bad_frame', message: 'Frame must be a JSON object' };
  }
  const record = value as Record<string, unknown>;
  const id = typeof record.id === 'string' && record.id.length <= 64 ? record.id : undefined;
  if (typeof record.type !== 'string') {
    return withId({ ok: false, code: 'bad_frame', message: 'Frame has no string "type"' }, id);
  }
  if (!knownTypes.has(record.type)) {
    const message = `Unknown frame type "${record.type.slice(0, 64)}"`;
    return withId({ ok: false, code: 'unknown_type', message }, id);
  }
  const parsed = ClientFrame.safeParse(value);
  if (!parsed.success) {
    return withId({ ok: false, code: 'bad_frame', message: describeIssues(parsed.error) }, id);
  }
  return { ok: true, frame: parsed.data };
}

export { decodeServerFrame, SERVER_FRAME_TYPES } from './decodeServerFrame.js';

export function encodeServerFrame(frame: ServerFrame): string {
  return JSON.stringify(frame);
}

function withId(failure: DecodeFailure, id: string | undefined): DecodeFailure {
  return id === undefined ? failure : { ...failure, id };
}

function describeIssues(error: z.ZodError): string {
  return error.issues
    .slice(0, 5)
    .map((issue) => `${issue.path.join('.') || '(frame)'}: ${issue.message}`)
    .join('; ');
}
