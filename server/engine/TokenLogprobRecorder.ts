import type { LlamaContextSequence, LlamaModel, SequenceEvaluateOptions, Token } from 'node-llama-cpp';
import type { TokenLogprob } from '../../protocol/index.js';
import { tokenBytes } from './tokenBytes.js';

/** One sampled token and the likeliest tokens of the distribution it was drawn from. */
type Draw = { token: Token; logprob: number; top: { token: Token; logprob: number }[] };

/** What a token's text is detokenized after: enough for a tokenizer's leading-space rule. */
const TRAIL_TOKENS = 16;
/** The floor OpenAI uses too: a probability that underflows a float is reported as this, never -Infinity (not JSON). */
const MIN_LOGPROB = -9999;

/**
 * Gives each token of an answer its log probability and top alternatives, while LlamaChat keeps
 * doing the generating (chat format, segments, stop triggers, grammar, function calls). LlamaChat
 * samples through `sequence.evaluate`, which reports no probabilities; the sequence it is given
 * by `observe` runs `evaluateWithMetadata` instead, which does, and records each draw. `take`
 * then matches a response chunk's tokens with their draws, in order. Only a request that asks for
 * logprobs builds one of these, so no other pays for the copy of the distribution per token.
 */
export class TokenLogprobRecorder {
  private draws: Draw[] = [];
  /** Tokens of chunks that had no text yet (a split character), given with the next chunk. */
  private pendingTokens: Token[] = [];
  private trail: Token[];

  constructor(
    private readonly model: LlamaModel,
    /** How many alternatives each token lists, 0–20. */
    private readonly top: number,
    promptTokens: readonly Token[],
  ) {
    this.trail = promptTokens.slice(-TRAIL_TOKENS);
  }

  /** The same sequence for LlamaChat, every sampled token's distribution recorded on the way. */
  observe(sequence: LlamaContextSequence): LlamaContextSequence {
    const evaluate = (tokens: Token[], options?: SequenceEvaluateOptions) => this.evaluate(sequence, tokens, options);
    return new Proxy(sequence, {
      get: (target, property) => {
        if (property === 'evaluate') return evaluate;
        const value: unknown = Reflect.get(target, property, target);
        return typeof value === 'function' ? value.bind(target) : value;
      },
    });
  }

  /**
   * The logprobs of a response chunk's tokens, each with its piece of the chunk's text (pieces
   * join to the text). Undefined while the text is '': those tokens go with the next chunk.
   */
  take(tokens: readonly Token[], text: string): TokenLogprob[] | undefined {
    this.pendingTokens.push(...tokens);
    if (text === '') return undefined;
    const chunkTokens = this.pendingTokens;
    this.pendingTokens = [];
    const pieces = this.piecesOf(chunkTokens, text);
    return chunkTokens.map((token, index) => this.entryOf(token, pieces[index] ?? ''));
  }

  /** `sequence.evaluate` as node-llama-cpp writes it, on `evaluateWithMetadata`. */
  private async *evaluate(
    sequence: LlamaContextSequence,
    tokens: Token[],
    options: SequenceEvaluateOptions | undefined,
  ): AsyncGenerator<Token, void, Token | Token[] | undefined> {
    // Without alternatives, only the sampled token's probability: the whole distribution is then
    // not copied into JavaScript (with a 200k-token vocabulary, ~100 ms a token on the event loop).
    const metadata = { confidence: true, probabilities: this.top > 0 };
    const iterator = sequence.evaluateWithMetadata(tokens, metadata, options);
    let input: Token | Token[] | undefined;
    try {
      while (true) {
        const { value, done } = await iterator.next(input);
        if (done) return;
        // Typed by the metadata asked for, which is only known at run time here.
        const { confidence, probabilities } = value as { confidence?: number; probabilities?: Map<Token, number> };
        this.draws.push(drawOf(value.token, confidence, probabilities, this.top));
        input = yield value.token;
      }
    } finally {
      await iterator.return();
    }
  }

  private entryOf(token: Token, text: string): TokenLogprob {
    const draw = this.drawOf(token);
    const top = draw.top.map((alternative) => {
      const piece = this.model.detokenize([alternative.token], false, this.trail);
      return { token: piece, logprob: alternative.logprob, bytes: this.bytesOf(alternative.token, piece) };
    });
    const own = this.model.detokenize([token], false, this.trail);
    const bytes = own.includes('\uFFFD') ? this.bytesOf(token, own) : [...Buffer.from(text, 'utf8')];
    this.trail.push(token);
    if (this.trail.length > TRAIL_TOKENS) this.trail.shift();
    return { token: text, logprob: draw.logprob, bytes, top };
  }

  /**
   * A token's own bytes: its text's, unless it is part of a character (its piece alone does not
   * decode), then the vocabulary entry's raw bytes, so that the answer's tokens' bytes join to
   * its UTF-8 as OpenAI's do. Such a token's text is '' and the character goes with its last token.
   */
  private bytesOf(token: Token, piece: string): number[] {
    if (!piece.includes('\uFFFD')) return [...Buffer.from(piece, 'utf8')];
    const { tokens, model } = this.model.fileInfo.metadata?.tokenizer?.ggml ?? {};
    const entry = tokens?.[token];
    return (typeof entry === 'string' ? tokenBytes(entry, model) : undefined) ?? [...Buffer.from(piece, 'utf8')];
  }

  /**
   * The draw of a chunk's token; draws before it were sampled but never shown (a stop trigger's
   * tokens, an end-of-generation token). A token LlamaChat placed itself, not sampled (a chat
   * format's forced text), had no alternative: probability 1.
   */
  private drawOf(token: Token): Draw {
    const index = this.draws.findIndex((draw) => draw.token === token);
    if (index === -1) return { token, logprob: 0, top: this.top === 0 ? [] : [{ token, logprob: 0 }] };
    const [draw] = this.draws.splice(0, index + 1).slice(-1);
    return draw as Draw;
  }

  /** Each token's piece of the text: what detokenizing up to it adds; the last one takes the rest. */
  private piecesOf(tokens: readonly Token[], text: string): string[] {
    if (tokens.length === 1) return [text];
    const pieces: string[] = [];
    let covered = 0;
    for (let end = 1; end < tokens.length; end++) {
      const upTo = this.model.detokenize(tokens.slice(0, end), false, this.trail);
      const grows = upTo.length >= covered && text.startsWith(upTo);
      pieces.push(grows ? text.slice(covered, upTo.length) : '');
      if (grows) covered = upTo.length;
    }
    pieces.push(text.slice(covered));
    return pieces;
  }
}

/** The sampled token's logprob and the `top` likeliest (the map comes sorted, likeliest first). */
function drawOf(
  token: Token,
  confidence: number | undefined,
  probabilities: ReadonlyMap<Token, number> | undefined,
  top: number,
): Draw {
  const alternatives: Draw['top'] = [];
  if (top > 0 && probabilities !== undefined) {
    for (const [alternative, probability] of probabilities) {
      // Tokens the grammar or a truncation (top-k, top-p, min-p) ruled out could not be drawn.
      if (probability <= 0) break;
      alternatives.push({ token: alternative, logprob: logOf(probability) });
      if (alternatives.length === top) break;
    }
  }
  return { token, logprob: logOf(confidence ?? probabilities?.get(token) ?? 0), top: alternatives };
}

function logOf(probability: number): number {
  return Math.max(MIN_LOGPROB, Math.min(0, Math.log(probability)));
}
