import type { Refusal, ResponseFormat } from '../../../protocol/index.js';
import { checkResponseFormat } from '../../engine/checkResponseFormat.js';
import type { OpenAiResponseFormat } from './requestSchemas.js';

/** OpenAI's `response_format` as the engine's, or the refusal of a schema the grammar cannot enforce. */
export function responseFormatOf(
  format: OpenAiResponseFormat | null | undefined,
): { format: ResponseFormat | undefined } | Refusal {
  if (format == null || format.type === 'text') return { format: undefined };
  if (format.type === 'json_object' || format.json_schema.schema === undefined)
    return { format: { type: 'json_object' } };
  const { schema, name } = format.json_schema;
  const converted: ResponseFormat = { type: 'json_schema', schema, ...(name === undefined ? {} : { name }) };
  return checkResponseFormat(converted, 'response_format.json_schema.schema') ?? { format: converted };
}
