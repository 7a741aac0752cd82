import type { Refusal, ResponseFormat } from '../../protocol/index.js';
import { toGrammarSchema } from './toGrammarSchema.js';

/**
 * Refuses, before the request is queued, a schema the grammar cannot enforce: `bad_frame` naming
 * the construct and where it is in the schema, `field` saying where the schema was sent.
 */
export function checkResponseFormat(format: ResponseFormat | undefined, field: string): Refusal | undefined {
  if (format?.type !== 'json_schema') return undefined;
  const converted = toGrammarSchema(format.schema);
  if (!('error' in converted)) return undefined;
  const { path, message } = converted.error;
  return { code: 'bad_frame', message: `${field}${path === '' ? '' : ` at ${path}`}: ${message}`, param: field };
}
