import type { Refusal } from '../../../protocol/index.js';

/**
 * OpenAI request fields this server does not implement, each with the values that ask for
 * nothing (a client that sends the default is not refused). Any other value is refused with
 * `unsupported_parameter` naming the field, as llama-server and vLLM do, rather than ignored:
 * a bot whose `tools` were silently dropped fails later, and less clearly.
 */
export type UnsupportedFields = Readonly<Record<string, { harmless: (value: unknown) => boolean; why: string }>>;

const UNSUPPORTED: UnsupportedFields = {
  functions: { harmless: isEmptyList, why: 'the legacy function calls are not supported (use tools)' },
  function_call: {
    harmless: (value) => value === 'none',
    why: 'the legacy function calls are not supported (use tool_choice)',
  },
  logit_bias: { harmless: isEmptyObject, why: 'logit_bias is not supported' },
  presence_penalty: { harmless: (value) => value === 0, why: 'presence_penalty is not supported (only 0)' },
  frequency_penalty: { harmless: (value) => value === 0, why: 'frequency_penalty is not supported (only 0)' },
  n: { harmless: (value) => value === 1, why: 'only one choice per request (n: 1)' },
  best_of: { harmless: (value) => value === 1, why: 'only one candidate per request (best_of: 1)' },
  echo: { harmless: (value) => value === false, why: 'echo is not supported' },
  suffix: { harmless: (value) => value === '', why: 'suffix (insertion) is not supported' },
  audio: { harmless: () => false, why: 'audio output is not supported' },
  modalities: { harmless: isTextOnly, why: 'only text output is supported' },
  prediction: { harmless: () => false, why: 'predicted outputs are not supported' },
  web_search_options: { harmless: () => false, why: 'web search is not supported' },
  store: { harmless: (value) => value === false, why: 'completions are not stored (store: false)' },
};

/** Message roles this server cannot take yet. */
const UNSUPPORTED_ROLES: Readonly<Record<string, string>> = {
  function: 'the legacy function results are not supported (use "tool" messages)',
};

/** The first field of the body that asks for something unsupported, as a refusal; null counts as absent. */
export function refuseUnsupported(body: unknown): Refusal | undefined {
  if (typeof body !== 'object' || body === null) return undefined;
  const fields = body as Record<string, unknown>;
  const refused = refuseFields(fields, UNSUPPORTED);
  if (refused !== undefined) return refused;
  return Array.isArray(fields.messages) ? refuseMessages(fields.messages) : undefined;
}

/** The first of `table`'s fields that `fields` sets to a value asking for something; null counts as absent. */
export function refuseFields(fields: Readonly<Record<string, unknown>>, table: UnsupportedFields): Refusal | undefined {
  for (const [field, { harmless, why }] of Object.entries(table)) {
    const value = fields[field];
    if (value === undefined || value === null || harmless(value)) continue;
    return unsupported(field, `${field}: ${why}`);
  }
  return undefined;
}

/** /v1/completions continues a text: it has no messages for tool calls and results. */
export function refuseToolsOnCompletions(body: unknown): Refusal | undefined {
  if (typeof body !== 'object' || body === null) return undefined;
  const fields = body as Record<string, unknown>;
  for (const field of ['tools', 'tool_choice'] as const) {
    const value = fields[field];
    if (value === undefined || value === null || isEmptyList(value) || value === 'none') continue;
    return unsupported(field, `${field}: tools are taken by /v1/chat/completions, not /v1/completions`);
  }
  return undefined;
}

function refuseMessages(messages: readonly unknown[]): Refusal | undefined {
  for (const [index, message] of messages.entries()) {
    if (typeof message !== 'object' || message === null) continue;
    const { role, function_call, content } = message as Record<string, unknown>;
    const where = `messages[${index}]`;
    const why = typeof role === 'string' ? UNSUPPORTED_ROLES[role] : undefined;
    if (why !== undefined) return unsupported(`${where}.role`, `${where}.role "${role}": ${why}`);
    if ((function_call ?? null) !== null)
      return unsupported(
        `${where}.function_call`,
        `${where}.function_call: legacy function calls are not supported (use tool_calls)`,
      );
    if (!Array.isArray(content)) continue;
    const part = content.find((item) => (item as { type?: unknown } | null)?.type !== 'text') as
      | { type?: unknown }
      | undefined;
    if (part !== undefined && typeof part?.type === 'string')
      return unsupported(`${where}.content`, `${where}.content: "${part.type}" parts are not supported (only text)`);
  }
  return undefined;
}

export function unsupported(param: string, message: string): Refusal {
  return { code: 'unsupported_parameter', message, param };
}

export function isEmptyList(value: unknown): boolean {
  return Array.isArray(value) && value.length === 0;
}

function isEmptyObject(value: unknown): boolean {
  return typeof value === 'object' && value !== null && Object.keys(value).length === 0;
}

function isTextOnly(value: unknown): boolean {
  return Array.isArray(value) && value.every((item) => item === 'text');
}
