import { randomUUID } from 'node:crypto';
import { basename } from 'node:path';
import { setImmediate as nextTurn } from 'node:timers/promises';
import { LRUCache } from 'lru-cache';
import {
  type ChatModelFunctions,
  type ChatWrapper,
  type GbnfJsonSchema,
  getLlama,
  HarmonyChatWrapper,
  type Llama,
  LlamaChat,
  type LlamaChatResponseChunk,
  type LlamaChatResponseFunctionCallParamsChunk,
  type LlamaContext,
  type LlamaContextSequence,
  type LlamaGrammar,
  LlamaLogLevel,
  type LlamaModel,
  resolveChatWrapper,
  type Token,
} from 'node-llama-cpp';
import type { Channel, ResponseFormat } from '../../protocol/index.js';
import { ContextLockYield } from './ContextLockYield.js';
import { DecodeBatchGate } from './DecodeBatchGate.js';
import { DeferredDelivery } from './DeferredDelivery.js';
import {
  type ChatMessage,
  type Engine,
  type EngineChunk,
  EngineError,
  type EngineInfo,
  type EngineRequest,
  type EngineResult,
  type EngineStop,
  type SamplingParams,
  type ToolCallChunk,
} from './Engine.js';
import { ForcedCallReader } from './ForcedCallReader.js';
import { FunctionCallPieces } from './FunctionCallPieces.js';
import { countTokensInSlices, fitPrompt } from './fitPrompt.js';
import { wantsFlashAttention } from './flashAttention.js';
import { LlamaEmbedder } from './LlamaEmbedder.js';
import { LlamaTokenizer } from './LlamaTokenizer.js';
import { PlainTextChatWrapper } from './PlainTextChatWrapper.js';
import { engineMemory, type MemoryPlan, planModelMemory } from './planModelMemory.js';
import { TokenLogprobRecorder } from './TokenLogprobRecorder.js';
import { toChatHistory } from './toChatHistory.js';
import { toGrammarSchema } from './toGrammarSchema.js';
import { forcedCallSchema, toolFunctions } from './toolFunctions.js';

export type LlamaEngineOptions = {
  modelPath: string;
  gpu: 'auto' | 'metal' | 'cuda' | 'vulkan' | 'cpu';
  threads: number;
  contextSize: number;
  /** Defaults to 16 on a GPU, 8 on CPU. */
  sequences?: number;
  /** `--memory-limit`: neither RAM nor VRAM is planned past it. Defaults to none (free memory only). */
  memoryLimitBytes?: number;
  /** Told the memory plan before the model loads (the start logs it). */
  onMemoryPlan?: (plan: MemoryPlan) => void;
};

/** How long one chunk of a prompt's evaluation may hold the other running answers back. */
const PREFILL_CHUNK_MS = 40;
const MIN_PREFILL_CHUNK = 8;
const MAX_PREFILL_CHUNK = 2048;
const GRAMMARS_KEPT = 64;

/** The Engine on node-llama-cpp: one model, one context, one sequence per concurrent generation. */
export class LlamaEngine implements Engine {
  private readonly deliveries = new DeferredDelivery();
  private readonly plainText = new PlainTextChatWrapper();
  /** Content tokens per message; stored history keeps its message objects, so each is counted once. */
  private readonly tokenCounts = new WeakMap<ChatMessage, number>();
  /** Grammars by their schema's JSON: bots send the same schema with every request. */
  private readonly grammars = new LRUCache<string, Promise<LlamaGrammar>>({ max: GRAMMARS_KEPT });
  private embedderMade: LlamaEmbedder | undefined;
  private tokenizerMade: LlamaTokenizer | undefined;

  private constructor(
    readonly info: EngineInfo,
    private readonly llama: Llama,
    private readonly model: LlamaModel,
    private readonly context: LlamaContext,
    private readonly sequences: readonly LlamaContextSequence[],
    private readonly chatWrapper: ChatWrapper,
    private readonly lockYield: ContextLockYield,
    private readonly batchGate: DecodeBatchGate,
    /** Tokens of a prompt evaluated in one go before the others get a turn; adapts to PREFILL_CHUNK_MS. */
    private prefillChunkTokens: number,
  ) {}

  static async load(options: LlamaEngineOptions): Promise<LlamaEngine> {
    const llama = await getLlama({
      gpu: options.gpu === 'cpu' ? false : options.gpu,
      logLevel: LlamaLogLevel.error,
      // A local build (`npm run build:engine`) is used when one matches, else the prebuilt binary;
      // never a build at start, which would need minutes and, for a fresh source, the network.
      build: 'never',
    });
    const sequenceCount = options.sequences ?? (llama.gpu === false ? 8 : 16);
    // Context size and GPU layers fitted to free memory before loading; a model that cannot fit is refused.
    const memory = await planModelMemory(llama, { ...options, sequences: sequenceCount }).catch(async (error) => {
      await llama.dispose();
      throw error;
    });
    options.onMemoryPlan?.(memory);
    const model = await llama.loadModel({ modelPath: options.modelPath, gpuLayers: memory.gpuLayers });
    const context = await model.createContext({
      sequences: sequenceCount,
      contextSize: memory.contextSize,
      threads: options.threads,
      flashAttention: wantsFlashAttention(model),
    });
    const sequences = Array.from({ length: sequenceCount }, () => context.getSequence());
    const chatWrapper = resolveChatWrapper(model);
    const info: EngineInfo = {
      modelName: basename(options.modelPath).replace(/\.gguf$/i, ''),
      contextSize: context.contextSize,
      sequences: sequenceCount,
      reasoning: chatWrapper instanceof HarmonyChatWrapper,
      backend: llama.gpu === false ? 'cpu' : llama.gpu,
      threads: options.threads,
      binary: llama.buildType === 'localBuild' ? 'local' : 'prebuilt',
      memory: engineMemory(memory),
    };
    // A first guess; prefill() sizes the chunks from how long they take.
    const prefillChunk = llama.gpu === false ? 64 : 512;
    // The gate first: the lock yield, wrapped around it, holds decodes back before they reach it.
    const batchGate = new DecodeBatchGate(context);
    const lockYield = new ContextLockYield(context);
    return new LlamaEngine(info, llama, model, context, sequences, chatWrapper, lockYield, batchGate, prefillChunk);
  }

  async generate(request: EngineRequest): Promise<EngineResult> {
    const sequence = this.sequences[request.slot];
    if (sequence === undefined) throw new RangeError(`No sequence ${request.slot}`);
    const chatWrapper = this.wrapperFor(request);
    const tools = toolModeOf(request.params);
    const functions = tools === 'auto' ? toolFunctions(request.params.tools ?? []) : undefined;
    const { history, promptTokens } = await this.fitToContext(chatWrapper, request, functions);
    // The last prompt token is always evaluated again, to get the logits of the first new one.
    const cachedPromptTokens = Math.min(
      commonPrefixLength(sequence.contextTokens, promptTokens),
      promptTokens.length - 1,
    );
    if (sequence.nextTokenIndex > cachedPromptTokens) {
      const stale = { start: cachedPromptTokens, end: sequence.nextTokenIndex };
      await this.lockYield.run(sequence, () => sequence.eraseContextTokenRanges([stale]));
    }
    const counts = { promptTokens: promptTokens.length, cachedPromptTokens };
    const grammar = await (tools === 'forced'
      ? this.forcedCallGrammar(request.params)
      : this.grammarFor(request.params.responseFormat));
    // A forced call is the whole answer: its text is read as the call, never shown as content.
    const forced = tools === 'forced' ? new ForcedCallReader(newCallId()) : undefined;
    const callPieces = new FunctionCallPieces(newCallId);
    const deliverCall = (chunk: ToolCallChunk) => this.deliveries.push(() => request.onToolCallChunk?.(chunk));
    // node-llama-cpp takes a grammar or functions, never both (the request's parser refuses both).
    const constraint: { grammar?: LlamaGrammar } | FunctionOptions =
      functions === undefined
        ? grammar === undefined
          ? {}
          : { grammar }
        : {
            functions,
            ...(request.params.parallelToolCalls === false ? { maxParallelFunctionCalls: 1 } : {}),
            onFunctionCallParamsChunk: (chunk) => {
              // Call tokens never reach onResponseChunk; counted by tokenizing what they wrote.
              deliverCall(callPieces.read(chunk, this.model.tokenize(chunk.paramsChunk).length));
            },
          };
    await this.prefill(sequence, promptTokens.slice(cachedPromptTokens, -1), request.signal);
    const logprobs = this.logprobRecorderFor(request, promptTokens);
    const chat = new LlamaChat({ contextSequence: logprobs?.observe(sequence) ?? sequence, chatWrapper });
    // Tokens of a chunk without text yet (a split character) are counted with the next one.
    let uncountedTokens = 0;
    try {
      const response = await chat.generateResponse(history, {
        ...samplingOptions(request),
        ...constraint,
        // The answer ends when the context is full: never a context shift, which would crawl.
        maxTokens: Math.min(request.params.maxTokens, this.info.contextSize - promptTokens.length),
        signal: request.signal,
        stopOnAbortSignal: true,
        onResponseChunk: (chunk) => {
          uncountedTokens += chunk.tokens.length;
          const tokenLogprobs = logprobs?.take(chunk.tokens, chunk.text);
          if (chunk.text === '') return;
          if (forced !== undefined) {
            for (const piece of forced.push(chunk.text, uncountedTokens)) deliverCall(piece);
            uncountedTokens = 0;
            return;
          }
          const delivered: EngineChunk = { text: chunk.text, channel: channelOf(chunk), tokens: uncountedTokens };
          if (tokenLogprobs !== undefined) delivered.logprobs = tokenLogprobs;
          uncountedTokens = 0;
          this.deliveries.push(() => request.onChunk(delivered));
        },
      });
      for (const piece of forced?.end() ?? []) deliverCall(piece);
      const stop = stopOf(response.metadata.stopReason);
      const unreportedTokens = forced?.unreportedTokens ?? 0;
      return {
        stop: stop === 'stop' && forced?.complete === true ? 'tool_calls' : stop,
        ...counts,
        ...(unreportedTokens === 0 ? {} : { unreportedTokens }),
      };
    } catch (error) {
      if (request.signal.aborted) return { stop: 'aborted', ...counts };
      throw error;
    } finally {
      this.batchGate.leave(sequence);
      this.deliveries.flush();
      chat.dispose({ disposeSequence: false });
    }
  }

  /**
   * Evaluates a prompt a chunk at a time, yielding between chunks, so that the other sequences'
   * next tokens join the batches in between: node-llama-cpp decodes a queued prompt in one run of
   * batches, and every other running answer would wait for all of it (measured: a 1,691-token
   * prompt held another stream's next token for 2.8 s; in 64-token chunks, 0.2 s, same total time).
   * Chunks are sized to take about PREFILL_CHUNK_MS (a token costs more deeper in the context, and
   * far less on a GPU). LlamaChat then finds these tokens in the sequence and evaluates only the last.
   */
  private async prefill(sequence: LlamaContextSequence, tokens: Token[], signal: AbortSignal): Promise<void> {
    // A prompt that fits one chunk goes in with the first token's batch, as LlamaChat does it.
    if (tokens.length <= this.prefillChunkTokens) return;
    for (let start = 0; start < tokens.length && !signal.aborted; ) {
      const chunk = tokens.slice(start, start + this.prefillChunkTokens);
      const began = performance.now();
      await sequence.evaluateWithoutGeneratingNewTokens(chunk);
      start += chunk.length;
      const perToken = (performance.now() - began) / chunk.length;
      const fitting = Math.round(PREFILL_CHUNK_MS / Math.max(perToken, 0.01));
      this.prefillChunkTokens = Math.min(MAX_PREFILL_CHUNK, Math.max(MIN_PREFILL_CHUNK, fitting));
      await nextTurn();
    }
  }

  /** Only for a request that asks for logprobs: sampling through it costs the probabilities copied out per token. */
  private logprobRecorderFor(request: EngineRequest, promptTokens: readonly Token[]): TokenLogprobRecorder | undefined {
    const asked = request.params.logprobs;
    return asked === undefined ? undefined : new TokenLogprobRecorder(this.model, asked.top, promptTokens);
  }

  /** The grammar that keeps the answer to the response format; none for free text. */
  private grammarFor(format: ResponseFormat | undefined): Promise<LlamaGrammar> | undefined {
    if (format === undefined || format.type === 'text') return undefined;
    const key = format.type === 'json_object' ? '' : JSON.stringify(format.schema);
    let grammar = this.grammars.get(key);
    if (grammar === undefined) {
      grammar = format.type === 'json_object' ? this.llama.getGrammarFor('json') : this.schemaGrammar(format.schema);
      // A failed build is not kept: the next request tries again.
      grammar.catch(() => this.grammars.delete(key));
      this.grammars.set(key, grammar);
    }
    return grammar;
  }

  /** The grammar of a forced call, kept like the response formats' (bots send the same tools each time). */
  private forcedCallGrammar({ tools = [], toolChoice = 'required' }: SamplingParams): Promise<LlamaGrammar> {
    const schema = forcedCallSchema(tools, toolChoice);
    const key = `tools:${JSON.stringify(schema)}`;
    let grammar = this.grammars.get(key);
    if (grammar === undefined) {
      grammar = this.llama.createGrammarForJsonSchema<GbnfJsonSchema>(schema);
      grammar.catch(() => this.grammars.delete(key));
      this.grammars.set(key, grammar);
    }
    return grammar;
  }

  private schemaGrammar(schema: Record<string, unknown>): Promise<LlamaGrammar> {
    const converted = toGrammarSchema(schema);
    if ('error' in converted) return Promise.reject(new EngineError('bad_frame', converted.error.message));
    return this.llama.createGrammarForJsonSchema<GbnfJsonSchema>(converted.schema);
  }

  /** Embeddings on a context of their own, made on the first request (see LlamaEmbedder). */
  get embedder(): LlamaEmbedder {
    const { contextSize, threads } = this.info;
    const vocabularySize = this.tokenizer.vocabularySize;
    this.embedderMade ??= new LlamaEmbedder(this.model, { contextSize, threads, vocabularySize });
    return this.embedderMade;
  }

  get tokenizer(): LlamaTokenizer {
    this.tokenizerMade ??= new LlamaTokenizer(this.model);
    return this.tokenizerMade;
  }

  async dispose(): Promise<void> {
    await this.embedderMade?.dispose();
    await this.context.dispose();
    await this.model.dispose();
    await this.llama.dispose();
  }

  /**
   * Drops the oldest turns (never the system prompt or the newest message) until the prompt
   * leaves room for the answer: a quarter of the context, or maxTokens if smaller. Token counts
   * are kept per message, so a long stored history is not tokenized again on every turn.
   */
  private fitToContext(chatWrapper: ChatWrapper, request: EngineRequest, functions: ChatModelFunctions | undefined) {
    const room = Math.min(request.params.maxTokens, Math.floor(this.info.contextSize / 4));
    return fitPrompt(request.messages, {
      budget: this.info.contextSize - room,
      countTokens: (message) => this.countTokens(message),
      render: (messages) => {
        const history = toChatHistory(messages);
        const { contextText } = chatWrapper.generateContextState({
          chatHistory: history,
          ...(functions === undefined ? {} : { availableFunctions: functions }),
        });
        const promptTokens = contextText.tokenize(this.model.tokenizer);
        return { history, promptTokens, tokenCount: promptTokens.length };
      },
      describeRoom: `the context holds ${this.info.contextSize} with ${room} kept for the answer`,
    });
  }

  private async countTokens(message: ChatMessage): Promise<number> {
    const known = this.tokenCounts.get(message);
    if (known !== undefined) return known;
    const count = await countTokensInSlices(message.content, (slice) => this.model.tokenize(slice).length);
    this.tokenCounts.set(message, count);
    return count;
  }

  private wrapperFor(request: EngineRequest): ChatWrapper {
    if (request.format === 'text') return this.plainText;
    const effort = request.params.reasoning;
    if (effort === undefined || !(this.chatWrapper instanceof HarmonyChatWrapper)) {
      return this.chatWrapper;
    }
    return new HarmonyChatWrapper({ reasoningEffort: effort });
  }
}

function commonPrefixLength(a: readonly Token[], b: readonly Token[]): number {
  const length = Math.min(a.length, b.length);
  let index = 0;
  while (index < length && a[index] === b[index]) index++;
  return index;
}

function samplingOptions({ params }: EngineRequest) {
  return {
    maxTokens: params.maxTokens,
    temperature: params.temperature,
    topP: params.topP,
    topK: params.topK,
    minP: params.minP,
    seed: params.seed,
    customStopTriggers: params.stop,
  };
}

/** Thoughts (and Harmony's commentary) are not the answer: they stream on 'reasoning'. */
function channelOf(chunk: LlamaChatResponseChunk): Channel {
  return chunk.type === 'segment' ? 'reasoning' : 'content';
}

function stopOf(reason: string): EngineStop {
  if (reason === 'maxTokens') return 'length';
  if (reason === 'abort') return 'aborted';
  if (reason === 'functionCalls') return 'tool_calls';
  return 'stop';
}

type FunctionOptions = {
  functions: ChatModelFunctions;
  maxParallelFunctionCalls?: number;
  onFunctionCallParamsChunk: (chunk: LlamaChatResponseFunctionCallParamsChunk) => void;
};

/** 'auto' offers the tools as functions; 'forced' makes the answer one call ('required' or a named tool). */
function toolModeOf({ tools, toolChoice = 'auto' }: SamplingParams): 'none' | 'auto' | 'forced' {
  if (tools === undefined || tools.length === 0 || toolChoice === 'none') return 'none';
  return toolChoice === 'auto' ? 'auto' : 'forced';
}

function newCallId(): string {
  return `call_${randomUUID().replaceAll('-', '').slice(0, 24)}`;
}
