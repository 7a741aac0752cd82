import type { Channel, ErrorCode, ReasoningLevel, ResponseFormat } from '../../protocol/index.js';

export type ChatRole = 'system' | 'user' | 'assistant';
export type ChatMessage = { role: ChatRole; content: string };

/** Sampling settings after defaults and limits are applied. */
export type SamplingParams = {
  maxTokens: number;
  temperature?: number;
  topP?: number;
  topK?: number;
  minP?: number;
  seed?: number;
  stop?: string[];
  reasoning?: ReasoningLevel;
  /** One of the engine's `models()`; undefined runs its default (`info.modelName`). */
  model?: string;
  /**
   * JSON only, constrained by a grammar: any object, or a value of a schema already checked by
   * `toGrammarSchema` (the request's parser refuses one it cannot enforce). Defaults to free text.
   */
  responseFormat?: ResponseFormat;
};

export type EngineChunk = { text: string; channel: Channel; tokens: number };

/** 'chat' renders the messages in the model's chat format; 'text' continues their text as is. */
export type PromptFormat = 'chat' | 'text';

export type EngineRequest = {
  /** The context sequence to decode on, 0 ≤ slot < info.sequences. */
  slot: number;
  format: PromptFormat;
  messages: readonly ChatMessage[];
  params: SamplingParams;
  signal: AbortSignal;
  onChunk: (chunk: EngineChunk) => void;
  /**
   * Whose conversation this is (the session id): an engine with several backends sends it back
   * where its prompt cache is warm.
   */
  affinityKey?: string;
};

export type EngineStop = 'stop' | 'length' | 'aborted';

export type EngineResult = {
  stop: EngineStop;
  promptTokens: number;
  /** Prompt tokens already in the sequence's KV cache, so not evaluated again. */
  cachedPromptTokens: number;
};

export type EngineInfo = {
  modelName: string;
  contextSize: number;
  sequences: number;
  /** True when the chat format takes a reasoning level (gpt-oss's Harmony). */
  reasoning: boolean;
  /** 'metal' | 'cuda' | 'vulkan' | 'cpu', or 'upstream' for a pool of inference servers */
  backend: string;
  threads: number;
  /**
   * Which llama.cpp binary runs the model: node-llama-cpp's 'prebuilt' one (the default, which
   * works everywhere), or a 'local' one built from its bundled source by `npm run build:engine`.
   * Absent for engines that are not node-llama-cpp (upstream servers).
   */
  binary?: EngineBinary;
};

export type EngineBinary = 'prebuilt' | 'local';

/** What the scheduler needs of a model: batched generation on numbered sequences. */
export interface Engine {
  readonly info: EngineInfo;
  generate(request: EngineRequest): Promise<EngineResult>;
  /** The models it serves, its default first; without it, only `info.modelName`. */
  models?(): readonly string[];
  dispose(): Promise<void>;
}

/** A failure the engine can name with a protocol code (the generation ends with finish 'error' and it). */
export class EngineError extends Error {
  override name = 'EngineError';
  constructor(
    readonly code: ErrorCode,
    message: string,
  ) {
    super(message);
  }
}

/** The prompt does not fit the context even after dropping old turns. */
export class ContextOverflowError extends Error {
  override name = 'ContextOverflowError';
}
