import type { Channel } from '../../../../protocol/index.js';
import type { ToolCall } from '../../../engine/Engine.js';
import type { GenerationOutcome } from '../../../scheduler/Generation.js';

/** What a response echoes of its request (OpenAI's response object repeats the settings it ran with). */
export type ResponseSettings = {
  model: string;
  instructions: string | null;
  previousResponseId: string | null;
  maxOutputTokens: number | null;
  temperature: number | null;
  topP: number | null;
  store: boolean;
  tools: unknown[];
  toolChoice: unknown;
  parallelToolCalls: boolean;
  reasoningEffort: string | null;
  textFormat: unknown;
  truncation: string;
  metadata: unknown;
};

type TextPart = { type: 'output_text' | 'reasoning_text'; text: string };
export type MessageItem = {
  type: 'message';
  id: string;
  status: 'in_progress' | 'completed' | 'incomplete';
  role: 'assistant';
  content: { type: 'output_text'; text: string; annotations: []; logprobs: [] }[];
};
export type ReasoningItem = {
  type: 'reasoning';
  id: string;
  summary: [];
  content: { type: 'reasoning_text'; text: string }[];
  status?: 'in_progress' | 'completed' | 'incomplete';
};
export type FunctionCallItem = {
  type: 'function_call';
  id: string;
  call_id: string;
  name: string;
  arguments: string;
  status: 'in_progress' | 'completed' | 'incomplete';
};
export type OutputItem = MessageItem | ReasoningItem | FunctionCallItem;

export type ResponseEvent = { type: string; sequence_number: number } & Record<string, unknown>;

const ITEM_PREFIX: Readonly<Record<OutputItem['type'], string>> = {
  message: 'msg',
  reasoning: 'rs',
  function_call: 'fc',
};

/**
 * The id of output item `index` of response `key`: a later request may refer to it
 * (`item_reference`), and the id alone says which stored response holds it.
 */
export function outputItemId(type: OutputItem['type'], key: string, index: number): string {
  return `${ITEM_PREFIX[type]}_${key}_${index}`;
}

/** The response key and item index an output item id names, or undefined for an id not of this form. */
export function parseOutputItemId(id: string): { key: string; index: number } | undefined {
  const match = /^(?:msg|rs|fc)_(.+)_(\d{1,4})$/.exec(id);
  if (match === null) return undefined;
  return { key: match[1] as string, index: Number(match[2]) };
}

/**
 * One response of the Responses API, built as the generation runs: output items (reasoning, the
 * message, function calls) opened and closed as the model's channels change, each step emitted as
 * the event a streaming client expects (`response.output_item.added`, `response.output_text.delta`,
 * …, in order, numbered). Without a stream the same builder gives the final object.
 */
export class ResponseBuilder {
  readonly id: string;
  private readonly output: OutputItem[] = [];
  /** The reasoning or message item receiving text now. */
  private open: { item: MessageItem | ReasoningItem; index: number } | undefined;
  /** Function-call items by the engine's call index. */
  private readonly calls = new Map<number, { item: FunctionCallItem; index: number }>();
  private sequence = 0;
  private reasoningTokens = 0;

  constructor(
    private readonly key: string,
    private readonly createdAt: number,
    private readonly settings: ResponseSettings,
    private readonly emit: (event: ResponseEvent) => void = () => {},
  ) {
    this.id = `resp_${key}`;
  }

  /** `response.created` and `response.in_progress`, before any output. */
  start(): void {
    const response = this.object('in_progress', null);
    this.event('response.created', { response });
    this.event('response.in_progress', { response });
  }

  text(channel: Channel, delta: string, tokens: number): void {
    if (channel === 'reasoning') this.reasoningTokens += tokens;
    const type = channel === 'reasoning' ? 'reasoning' : 'message';
    if (this.open?.item.type !== type) this.openTextItem(type);
    const open = this.open as { item: MessageItem | ReasoningItem; index: number };
    const part = open.item.content[0] as TextPart;
    part.text += delta;
    const where = { item_id: open.item.id, output_index: open.index, content_index: 0, delta };
    if (type === 'message') this.event('response.output_text.delta', { ...where, logprobs: [] });
    else this.event('response.reasoning_text.delta', where);
  }

  /** A piece of function call `callIndex` (its arguments' next characters). */
  toolCall(callIndex: number, call: ToolCall, argumentsDelta: string): void {
    let entry = this.calls.get(callIndex);
    if (entry === undefined) {
      this.closeText();
      const index = this.output.length;
      const item: FunctionCallItem = {
        type: 'function_call',
        id: outputItemId('function_call', this.key, index),
        call_id: call.id,
        name: call.name,
        arguments: '',
        status: 'in_progress',
      };
      this.output.push(item);
      entry = { item, index };
      this.calls.set(callIndex, entry);
      this.event('response.output_item.added', { output_index: index, item: { ...item } });
    }
    if (argumentsDelta === '') return;
    entry.item.arguments += argumentsDelta;
    this.event('response.function_call_arguments.delta', {
      item_id: entry.item.id,
      output_index: entry.index,
      delta: argumentsDelta,
    });
  }

  /** Closes every item, emits the last event and gives the final response object. */
  finish(outcome: GenerationOutcome) {
    const { status, incomplete, error } = statusOf(outcome);
    // An item cut by the end of a response that did not complete is incomplete, as OpenAI marks it.
    const itemStatus = status === 'completed' ? 'completed' : 'incomplete';
    this.closeText(itemStatus);
    for (const { item, index } of this.calls.values()) {
      item.status = itemStatus;
      this.event('response.function_call_arguments.done', {
        item_id: item.id,
        output_index: index,
        name: item.name,
        arguments: item.arguments,
      });
      this.event('response.output_item.done', { output_index: index, item });
    }
    const response = { ...this.object(status, outcome), incomplete_details: incomplete, error };
    const last =
      status === 'completed'
        ? 'response.completed'
        : status === 'incomplete'
          ? 'response.incomplete'
          : 'response.failed';
    this.event(last, { response });
    return response;
  }

  /** The output items so far (closed ones complete). */
  items(): readonly OutputItem[] {
    return this.output;
  }

  private openTextItem(type: 'message' | 'reasoning'): void {
    this.closeText();
    const index = this.output.length;
    const id = outputItemId(type, this.key, index);
    const item: MessageItem | ReasoningItem =
      type === 'message'
        ? {
            type,
            id,
            status: 'in_progress',
            role: 'assistant',
            content: [{ type: 'output_text', text: '', annotations: [], logprobs: [] }],
          }
        : { type, id, summary: [], content: [{ type: 'reasoning_text', text: '' }] };
    this.output.push(item);
    this.open = { item, index };
    this.event('response.output_item.added', { output_index: index, item: { ...item, content: [] } });
    this.event('response.content_part.added', {
      item_id: id,
      output_index: index,
      content_index: 0,
      part: { ...(item.content[0] as TextPart) },
    });
  }

  private closeText(status: 'completed' | 'incomplete' = 'completed'): void {
    const open = this.open;
    if (open === undefined) return;
    this.open = undefined;
    const { item, index } = open;
    const part = item.content[0] as TextPart;
    const where = { item_id: item.id, output_index: index, content_index: 0 };
    if (item.type === 'message') {
      item.status = status;
      this.event('response.output_text.done', { ...where, text: part.text, logprobs: [] });
    } else this.event('response.reasoning_text.done', { ...where, text: part.text });
    this.event('response.content_part.done', { ...where, part });
    this.event('response.output_item.done', { output_index: index, item });
  }

  private event(type: string, fields: Record<string, unknown>): void {
    this.emit({ type, sequence_number: this.sequence++, ...fields });
  }

  private object(status: string, outcome: GenerationOutcome | null) {
    const s = this.settings;
    return {
      id: this.id,
      object: 'response',
      created_at: this.createdAt,
      status,
      error: null,
      incomplete_details: null,
      instructions: s.instructions,
      max_output_tokens: s.maxOutputTokens,
      model: s.model,
      output: status === 'in_progress' ? [] : this.output,
      parallel_tool_calls: s.parallelToolCalls,
      previous_response_id: s.previousResponseId,
      reasoning: { effort: s.reasoningEffort, summary: null },
      store: s.store,
      temperature: s.temperature,
      text: { format: s.textFormat },
      tool_choice: s.toolChoice,
      tools: s.tools,
      top_p: s.topP,
      truncation: s.truncation,
      usage: outcome === null ? null : this.usageOf(outcome),
      metadata: s.metadata,
    };
  }

  private usageOf({ usage }: GenerationOutcome) {
    return {
      input_tokens: usage.promptTokens,
      input_tokens_details: { cached_tokens: usage.cachedPromptTokens },
      output_tokens: usage.completionTokens,
      output_tokens_details: { reasoning_tokens: this.reasoningTokens },
      total_tokens: usage.promptTokens + usage.completionTokens,
    };
  }
}

/** How a generation's end reads as a response's status. */
function statusOf(outcome: GenerationOutcome): {
  status: 'completed' | 'incomplete' | 'failed';
  incomplete: { reason: string } | null;
  error: { code: string; message: string } | null;
} {
  switch (outcome.finish) {
    case 'stop':
    case 'tool_calls':
      return { status: 'completed', incomplete: null, error: null };
    case 'length':
    case 'timeout':
      return { status: 'incomplete', incomplete: { reason: 'max_output_tokens' }, error: null };
    default: {
      // Cancelled (the server shutting down) or failed: either way the answer is not whole.
      const { code, message } = outcome.error ?? {
        code: outcome.finish,
        message: `The answer ended: ${outcome.finish}`,
      };
      return { status: 'failed', incomplete: null, error: { code, message } };
    }
  }
}
