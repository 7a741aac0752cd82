import type {
  Channel,
  ErrorCode,
  LogprobsParams,
  ReasoningLevel,
  ResponseFormat,
  TokenLogprob,
} from '../../protocol/index.js';

export type ChatRole = 'system' | 'user' | 'assistant' | 'tool';
export type ChatMessage = {
  role: ChatRole;
  content: string;
  /** On an assistant message: the tools it called (its content may be ''). */
  toolCalls?: readonly ToolCall[];
  /** On a 'tool' message (its content is the tool's result): the id of the call it answers. */
  toolCallId?: string;
};

/**
 * A function the model may call. `parameters` is a JSON Schema for its arguments, already
 * checked by `toGrammarSchema` (the request's parser refuses one the grammar cannot enforce).
 */
export type ToolDefinition = { name: string; description?: string; parameters: Record<string, unknown> };

/**
 * Whether the model calls a tool: 'auto' (it decides), 'none' (no tools offered), 'required' (one
 * call of any tool, forced by a grammar), or one named tool (one call of it, forced the same way).
 */
export type ToolChoice = 'auto' | 'none' | 'required' | { name: string };

/** One call the model made: `arguments` is JSON text that parses and matches the tool's schema. */
export type ToolCall = { id: string; name: string; arguments: string };

/**
 * A piece of a tool call as the model writes it, for streaming: `index` counts the answer's calls
 * from 0; every piece of a call carries its id and name, `arguments` is the next piece of its JSON.
 */
export type ToolCallChunk = { index: number; id: string; name: string; arguments: string; tokens: number };

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
  /**
   * Each token's log probability and its `top` likeliest alternatives, on every chunk. Defaults to
   * none (nothing is computed).
   */
  logprobs?: LogprobsParams;
  /** Tools the model may call; none when absent or when `toolChoice` is 'none'. */
  tools?: readonly ToolDefinition[];
  /** Defaults to 'auto'. */
  toolChoice?: ToolChoice;
  /** Whether one answer may hold several calls (under 'auto'). Defaults to true. */
  parallelToolCalls?: boolean;
};

/** `logprobs` only when the params asked for them: one entry per token of `text`, in order. */
export type EngineChunk = { text: string; channel: Channel; tokens: number; logprobs?: TokenLogprob[] };

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
  /** Receives the pieces of the model's tool calls; the answer then ends with stop 'tool_calls'. */
  onToolCallChunk?: (chunk: ToolCallChunk) => void;
  /**
   * Whose conversation this is (the session id): an engine with several backends sends it back
   * where its prompt cache is warm.
   */
  affinityKey?: string;
};

/** 'tool_calls': the answer ended with tool calls, whose results the caller sends in a next turn. */
export type EngineStop = 'stop' | 'length' | 'aborted' | 'tool_calls';

export type EngineResult = {
  stop: EngineStop;
  promptTokens: number;
  /** Prompt tokens already in the sequence's KV cache, so not evaluated again. */
  cachedPromptTokens: number;
  /** Tokens generated that reached no chunk (a forced call cut before its name was whole): counted in usage. */
  unreportedTokens?: number;
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
  /** The memory the model was fitted to at load (node-llama-cpp engines only): see planModelMemory. */
  memory?: EngineMemory;
};

export type EngineBinary = 'prebuilt' | 'local';

/** The estimate of a loaded model's memory against what was free, and what the fitting chose. */
export type EngineMemory = {
  /** Tokens per sequence chosen; below `askedContextSize` when the asked one did not fit. */
  contextSize: number;
  askedContextSize: number;
  sequences: number;
  gpuLayers: number;
  /** The weights' share of the need, and the context's (KV cache and compute buffers). */
  modelBytes: number;
  contextBytes: number;
  neededRamBytes: number;
  neededVramBytes: number;
  freeRamBytes: number;
  freeVramBytes: number;
  /** `--memory-limit`, when set. */
  limitBytes?: number;
};

/** What the scheduler needs of a model: batched generation on numbered sequences. */
export interface Engine {
  readonly info: EngineInfo;
  generate(request: EngineRequest): Promise<EngineResult>;
  /** The models it serves, its default first; without it, only `info.modelName`. */
  models?(): readonly string[];
  /** Embeddings from the loaded model (POST /v1/embeddings); absent where the engine has none. */
  readonly embedder?: Embedder;
  /** The loaded model's tokenizer (POST /tokenize, /detokenize); absent where the engine has none. */
  readonly tokenizer?: ModelTokenizer;
  dispose(): Promise<void>;
}

/** One input to embed: a text, or token ids of the model's own vocabulary. */
export type EmbeddingInput = string | readonly number[];

/** Embedding vectors of the loaded model, one input at a time on a context of their own. */
export interface Embedder {
  /** The width of every vector. */
  readonly dimensions: number;
  /** The most tokens one input may have (the start and end tokens the model adds included). */
  readonly maxInputTokens: number;
  /** Token ids of an input run from 0 to vocabularySize − 1. */
  readonly vocabularySize: number;
  /** Tokens the model reads for an input, its added start and end tokens included: checked and charged before any work. */
  countTokens(input: EmbeddingInput): Promise<number>;
  /** One vector per input, in order; stops early (rejecting) when the signal aborts, or with EngineError once disposing. */
  embed(inputs: readonly EmbeddingInput[], signal: AbortSignal): Promise<number[][]>;
}

/** A token's text: a string when its bytes are valid UTF-8 on their own, else the bytes (as llama-server gives them). */
export type TokenPiece = string | number[];

/** The loaded model's tokenizer, as llama-server exposes it. */
export interface ModelTokenizer {
  /** Token ids run from 0 to vocabularySize − 1. */
  readonly vocabularySize: number;
  /**
   * `addSpecial` adds the start (and end) tokens the model puts around a prompt; `parseSpecial`
   * reads special tokens written in the text (`<s>`) as those tokens, else as plain text.
   */
  tokenize(text: string, options: { addSpecial: boolean; parseSpecial: boolean }): number[];
  pieceOf(token: number): TokenPiece;
  /** Ids must be checked against vocabularySize first: the native side aborts the process on a bad one. */
  detokenize(tokens: readonly number[]): string;
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
