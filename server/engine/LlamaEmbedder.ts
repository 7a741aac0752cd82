import type { LlamaEmbeddingContext, LlamaModel, Token } from 'node-llama-cpp';
import { type Embedder, type EmbeddingInput, EngineError } from './Engine.js';

export type LlamaEmbedderOptions = {
  /** Tokens the embedding context holds: one input at most this minus one (node-llama-cpp's bound). */
  contextSize: number;
  /** CPU threads, as the chat context: more than the cores makes llama.cpp's threads spin against each other. */
  threads: number;
  vocabularySize: number;
};

/**
 * Embeddings on node-llama-cpp's embedding context: a context of its own beside the chat one (one
 * sequence, embeddings on), which evaluates one input at a time. It is created on the first
 * request, not at start: a server never asked for embeddings never holds its KV cache and compute
 * buffers (measured on the tiny model: 5 ms and 2–4 MB to create; on a large model the buffers
 * for a whole-context batch are what costs), and a creation that fails (memory) is tried again.
 */
export class LlamaEmbedder implements Embedder {
  readonly dimensions: number;
  readonly maxInputTokens: number;
  readonly vocabularySize: number;
  private context: Promise<LlamaEmbeddingContext> | undefined;
  /** The input being evaluated: dispose() waits for it, since the native context must not go mid-evaluation. */
  private evaluating: Promise<unknown> = Promise.resolve();
  private disposing = false;

  constructor(
    private readonly model: LlamaModel,
    private readonly options: LlamaEmbedderOptions,
  ) {
    this.dimensions = model.embeddingVectorSize;
    // getEmbeddingFor refuses an input of contextSize tokens or more.
    this.maxInputTokens = options.contextSize - 1;
    this.vocabularySize = options.vocabularySize;
  }

  async countTokens(input: EmbeddingInput): Promise<number> {
    const context = await this.embeddingContext();
    return context.calculateInputLength(this.tokensOrText(input));
  }

  async embed(inputs: readonly EmbeddingInput[], signal: AbortSignal): Promise<number[][]> {
    const context = await this.embeddingContext();
    const vectors: number[][] = [];
    for (const input of inputs) {
      signal.throwIfAborted();
      if (this.disposing) throw new EngineError('shutting_down', 'The server is shutting down');
      const embedding = context.getEmbeddingFor(this.tokensOrText(input));
      this.evaluating = embedding.catch(() => undefined);
      vectors.push([...(await embedding).vector]);
    }
    return vectors;
  }

  async dispose(): Promise<void> {
    this.disposing = true;
    await this.evaluating;
    const context = await this.context?.catch(() => undefined);
    await context?.dispose();
  }

  /** Token ids are checked here too: llama.cpp aborts the whole process on one outside the vocabulary. */
  private tokensOrText(input: EmbeddingInput): string | Token[] {
    if (typeof input === 'string') return input;
    const bad = input.find((token) => !isTokenOf(this.vocabularySize, token));
    if (bad !== undefined) throw new RangeError(`Token id ${bad} is outside the vocabulary`);
    return input.slice() as Token[];
  }

  private embeddingContext(): Promise<LlamaEmbeddingContext> {
    if (this.context === undefined) {
      const { contextSize, threads } = this.options;
      // The whole input in one batch: an embedding model without causal attention needs it so.
      const made = this.model
        .createEmbeddingContext({ contextSize, batchSize: contextSize, threads })
        .catch((error: unknown) => {
          if (this.context === made) this.context = undefined;
          const why = error instanceof Error ? error.message : String(error);
          throw new EngineError('model_error', `The model cannot compute embeddings: ${why}`);
        });
      this.context = made;
    }
    return this.context;
  }
}

export function isTokenOf(vocabularySize: number, token: number): boolean {
  return Number.isInteger(token) && token >= 0 && token < vocabularySize;
}
