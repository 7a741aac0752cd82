import type { Token } from '../../protocol/index.js';

/**
 * Token frames held back from a client that reads slowly. A generation's consecutive tokens on
 * one channel merge into one frame (its `seq` is the last one's), so a slow reader gets fewer,
 * larger frames: nothing is dropped and every generation's order is kept.
 */
export class TokenOutbox {
  private runs: Token[] = [];
  private readonly lastRun = new Map<string, Token>();
  private textBytes = 0;

  get isEmpty(): boolean {
    return this.runs.length === 0;
  }

  /** Roughly what the held frames will take on the wire. */
  get bytes(): number {
    return this.textBytes + this.runs.length * 80;
  }

  add(token: Token): void {
    this.textBytes += heldBytesOf(token);
    const last = this.lastRun.get(token.genId);
    if (last !== undefined && last.channel === token.channel) {
      last.text += token.text;
      last.seq = token.seq;
      if (last.logprobs !== undefined && token.logprobs !== undefined) last.logprobs.push(...token.logprobs);
      return;
    }
    // A copy, logprobs too: later tokens are merged into it.
    const run = token.logprobs === undefined ? { ...token } : { ...token, logprobs: [...token.logprobs] };
    this.runs.push(run);
    this.lastRun.set(token.genId, run);
  }

  /** Forgets what is held for a generation (a client replaying it gets those tokens again). */
  drop(genId: string): void {
    if (!this.lastRun.has(genId)) return;
    this.runs = this.runs.filter((run) => run.genId !== genId);
    this.lastRun.delete(genId);
    this.textBytes = this.runs.reduce((sum, run) => sum + heldBytesOf(run), 0);
  }

  /** Everything held, in order; the outbox is empty afterwards. */
  take(): Token[] {
    const runs = this.runs;
    this.runs = [];
    this.lastRun.clear();
    this.textBytes = 0;
    return runs;
  }
}

/** About what one logprob entry, or one of its alternatives, takes as JSON. */
const LOGPROB_ENTRY_BYTES = 64;

/** A token's text, and its logprobs when it has them (with 20 alternatives, far more than the text). */
function heldBytesOf(token: Token): number {
  let bytes = Buffer.byteLength(token.text);
  for (const entry of token.logprobs ?? []) bytes += (1 + entry.top.length) * LOGPROB_ENTRY_BYTES;
  return bytes;
}
