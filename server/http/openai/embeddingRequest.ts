import { z } from 'zod';
import type { Refusal } from '../../../protocol/index.js';
import type { EmbeddingInput } from '../../engine/Engine.js';

/** Inputs one request may embed, as OpenAI allows; the body's size (maxBodyBytes) bounds their total. */
export const MAX_EMBEDDING_INPUTS = 2048;

/** The fields of OpenAI's embeddings request; `user` only describes the caller and is ignored. */
const KNOWN_FIELDS: ReadonlySet<string> = new Set(['input', 'model', 'encoding_format', 'dimensions', 'user']);

const TokenIds = z.array(z.number().int());

const EmbeddingRequestSchema = z.object({
  input: z.union([z.string(), z.array(z.string()), TokenIds, z.array(TokenIds)], {
    error: 'input must be a string, an array of strings, an array of token ids or an array of arrays of token ids',
  }),
  model: z.string().optional(),
  encoding_format: z.enum(['float', 'base64'], { error: 'encoding_format must be "float" or "base64"' }).nullish(),
  dimensions: z.number().int().min(1).nullish(),
  user: z.string().optional(),
});

export type EncodingFormat = 'float' | 'base64';

export type EmbeddingRequest = {
  inputs: EmbeddingInput[];
  /** The field that holds each input, for errors: `input`, or `input[i]` when a list was sent. */
  paramOf: (index: number) => string;
  encoding: EncodingFormat;
  model: string | undefined;
};

/** What the request is checked against: the loaded model's vector width and vocabulary. */
export type EmbeddingModelShape = { dimensions: number; vocabularySize: number };

/**
 * OpenAI's embeddings request, checked: a string, strings, token ids or arrays of token ids (of
 * this model's vocabulary, as llama-server and vLLM take them); none empty; `dimensions` only
 * as the model's own width (shortening vectors is not supported). Input lengths in tokens are
 * checked later, against the model.
 */
export function parseEmbeddingRequest(value: unknown, shape: EmbeddingModelShape): EmbeddingRequest | Refusal {
  const early = refuseEarly(value);
  if (early !== undefined) return early;
  const result = EmbeddingRequestSchema.safeParse(value);
  if (!result.success) {
    const issue = result.error.issues[0];
    const param = issue?.path.join('.') || undefined;
    const message = `${param ?? '(body)'}: ${issue?.message ?? 'invalid'}`;
    return { code: 'bad_frame', message, ...(param === undefined ? {} : { param }) };
  }
  const body = result.data;
  if (body.dimensions != null && body.dimensions !== shape.dimensions) {
    const message = `dimensions: this model's embeddings have ${shape.dimensions} dimensions; shortening them is not supported`;
    return { code: 'unsupported_parameter', message, param: 'dimensions' };
  }
  const inputs = inputsOf(body.input);
  const listed = Array.isArray(body.input) && typeof body.input[0] !== 'number';
  const paramOf = (index: number) => (listed ? `input[${index}]` : 'input');
  const bad = refuseInputs(inputs, paramOf, shape.vocabularySize);
  if (bad !== undefined) return bad;
  return { inputs, paramOf, encoding: body.encoding_format ?? 'float', model: body.model };
}

/** Checks done before the schema, in one cheap pass: unknown fields, and the number of inputs. */
function refuseEarly(value: unknown): Refusal | undefined {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    return { code: 'bad_frame', message: 'The body must be a JSON object' };
  }
  const unknown = Object.keys(value).find((field) => !KNOWN_FIELDS.has(field));
  if (unknown !== undefined) {
    const message = `${unknown.slice(0, 64)}: not supported by /v1/embeddings (supported: ${[...KNOWN_FIELDS].join(', ')})`;
    return { code: 'unsupported_parameter', message, param: unknown.slice(0, 64) };
  }
  const { input } = value as { input?: unknown };
  if (Array.isArray(input) && input.length > MAX_EMBEDDING_INPUTS && typeof input[0] !== 'number') {
    const message = `input: at most ${MAX_EMBEDDING_INPUTS} inputs per request (this one has ${input.length})`;
    return { code: 'payload_too_large', message, param: 'input' };
  }
  return undefined;
}

/** One array of numbers is one input in token ids; an array of strings or of arrays is many. */
function inputsOf(input: z.infer<typeof EmbeddingRequestSchema>['input']): EmbeddingInput[] {
  if (typeof input === 'string') return [input];
  if (input.length > 0 && typeof input[0] === 'number') return [input as number[]];
  return input as EmbeddingInput[];
}

function refuseInputs(
  inputs: readonly EmbeddingInput[],
  paramOf: (index: number) => string,
  vocabularySize: number,
): Refusal | undefined {
  if (inputs.length === 0) return { code: 'bad_frame', message: 'input: at least one input is needed', param: 'input' };
  for (const [index, input] of inputs.entries()) {
    const where = paramOf(index);
    if (input.length === 0) return { code: 'bad_frame', message: `${where}: must not be empty`, param: where };
    if (typeof input === 'string') continue;
    const at = input.findIndex((token) => token < 0 || token >= vocabularySize);
    if (at !== -1) {
      const message = `${where}[${at}]: token id ${input[at]} is outside the model's vocabulary (0–${vocabularySize - 1})`;
      return { code: 'bad_frame', message, param: where };
    }
  }
  return undefined;
}
