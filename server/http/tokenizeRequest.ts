import { z } from 'zod';
import type { Refusal } from '../../protocol/index.js';

/** llama-server's POST /tokenize body; `model`, when sent, must name the loaded one. */
const TokenizeRequestSchema = z.strictObject({
  content: z.string({ error: 'content must be a string' }),
  add_special: z.boolean().optional(),
  parse_special: z.boolean().optional(),
  with_pieces: z.boolean().optional(),
  model: z.string().optional(),
});

/** llama-server's POST /detokenize body. */
const DetokenizeRequestSchema = z.strictObject({
  tokens: z.array(z.number().int(), { error: 'tokens must be an array of integer token ids' }),
  model: z.string().optional(),
});

export type TokenizeRequest = {
  content: string;
  addSpecial: boolean;
  parseSpecial: boolean;
  withPieces: boolean;
  model: string | undefined;
};

export type DetokenizeRequest = { tokens: number[]; model: string | undefined };

/** As llama-server: add_special defaults to false, parse_special to true, with_pieces to false. */
export function parseTokenizeRequest(value: unknown): TokenizeRequest | Refusal {
  const result = TokenizeRequestSchema.safeParse(value);
  if (!result.success) return refusalOf(result.error);
  const { content, add_special, parse_special, with_pieces, model } = result.data;
  return {
    content,
    addSpecial: add_special ?? false,
    parseSpecial: parse_special ?? true,
    withPieces: with_pieces ?? false,
    model,
  };
}

/** Every id must be of the model's vocabulary: llama.cpp aborts the process on one that is not. */
export function parseDetokenizeRequest(value: unknown, vocabularySize: number): DetokenizeRequest | Refusal {
  const result = DetokenizeRequestSchema.safeParse(value);
  if (!result.success) return refusalOf(result.error);
  const { tokens, model } = result.data;
  const at = tokens.findIndex((token) => token < 0 || token >= vocabularySize);
  if (at !== -1) {
    const message = `tokens[${at}]: token id ${tokens[at]} is outside the model's vocabulary (0–${vocabularySize - 1})`;
    return { code: 'bad_frame', message, param: `tokens[${at}]` };
  }
  return { tokens, model };
}

/** The first problem, naming its field; an unknown field is refused as unsupported rather than ignored. */
function refusalOf(error: z.ZodError): Refusal {
  const issue = error.issues[0];
  if (issue?.code === 'unrecognized_keys') {
    const field = (issue.keys[0] ?? '').slice(0, 64);
    return { code: 'unsupported_parameter', message: `${field}: not supported here`, param: field };
  }
  const param = issue?.path.join('.') || undefined;
  const message = `${param ?? '(body)'}: ${issue?.message ?? 'invalid'}`;
  return { code: 'bad_frame', message, ...(param === undefined ? {} : { param }) };
}
