import type { LlamaModel, Token } from 'node-llama-cpp';
import type { ModelTokenizer, TokenPiece } from './Engine.js';
import { isTokenOf } from './LlamaEmbedder.js';
import { tokenBytes } from './tokenBytes.js';

/** The loaded model's tokenizer, for POST /tokenize and /detokenize (llama-server's endpoints). */
export class LlamaTokenizer implements ModelTokenizer {
  readonly vocabularySize: number;

  constructor(private readonly model: LlamaModel) {
    this.vocabularySize = model.fileInfo.metadata?.tokenizer?.ggml?.tokens?.length ?? 0;
  }

  tokenize(text: string, { addSpecial, parseSpecial }: { addSpecial: boolean; parseSpecial: boolean }): number[] {
    // A copy: the start and end tokens are added to it.
    const tokens: number[] = [...this.model.tokenize(text, parseSpecial)];
    if (!addSpecial) return tokens;
    const { bos, eos, shouldPrependBosToken, shouldAppendEosToken } = this.model.tokens;
    if (shouldPrependBosToken && bos !== null && tokens[0] !== bos) tokens.unshift(bos);
    if (shouldAppendEosToken && eos !== null && tokens.at(-1) !== eos) tokens.push(eos);
    return tokens;
  }

  /** A token alone may be part of a character: its bytes are given then, as llama-server does. */
  pieceOf(token: number): TokenPiece {
    this.check([token]);
    // Read after a token (any): its leading space is kept, as in llama-server's pieces, not trimmed as at a text's start.
    const text = this.model.detokenize([token as Token], true, [token as Token]);
    if (!text.includes('\uFFFD')) return text;
    const { tokens, model } = this.model.fileInfo.metadata?.tokenizer?.ggml ?? {};
    const entry = tokens?.[token];
    return (typeof entry === 'string' ? tokenBytes(entry, model) : undefined) ?? text;
  }

  detokenize(tokens: readonly number[]): string {
    this.check(tokens);
    return this.model.detokenize(tokens as Token[], true);
  }

  /** llama.cpp aborts the whole process on an id outside the vocabulary. */
  private check(tokens: readonly number[]): void {
    const bad = tokens.find((token) => !isTokenOf(this.vocabularySize, token));
    if (bad !== undefined)
      throw new RangeError(`Token id ${bad} is outside the vocabulary (0–${this.vocabularySize - 1})`);
  }
}
