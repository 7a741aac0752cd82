import type { ToolCallChunk } from './Engine.js';

const HEAD = /^\s*\{\s*"name"\s*:\s*("(?:[^"\\]|\\.)*")\s*,\s*"arguments"\s*:\s*/;
/** What may close the call object: held back until more text shows it was part of the arguments. */
const TAIL = /[\s}]*$/;

/**
 * Reads a forced call (`{"name": …, "arguments": …}`, see forcedCallSchema) as the model writes
 * it, into tool-call pieces: the first once the name is known, then the arguments as they come,
 * holding back the closing brace of the call object.
 */
export class ForcedCallReader {
  private text = '';
  private name: string | undefined;
  /** Characters of `text` already handed out as arguments (after the head). */
  private sent = 0;
  private headLength = 0;
  private pendingTokens = 0;

  constructor(private readonly id: string) {}

  /** Takes the next piece of the answer's text; returns the call pieces it completes. */
  push(text: string, tokens: number): ToolCallChunk[] {
    this.text += text;
    this.pendingTokens += tokens;
    if (this.name === undefined && !this.readHead()) return [];
    // Whitespace before the arguments is the call object's, not theirs.
    const leading = /^\s*/.exec(this.text.slice(this.headLength))?.[0].length ?? 0;
    if (this.sent === 0) this.headLength += leading;
    const body = this.text.slice(this.headLength);
    const safeEnd = body.length - (TAIL.exec(body)?.[0].length ?? 0);
    if (safeEnd <= this.sent && this.pendingTokens === 0) return [];
    return [this.piece(body.slice(this.sent, Math.max(this.sent, safeEnd)), safeEnd)];
  }

  /** The rest of the arguments once the answer has ended: all but the call object's closing brace. */
  end(): ToolCallChunk[] {
    if (this.name === undefined) return [];
    const body = this.text.slice(this.headLength).replace(/\s*\}\s*$/, '');
    if (body.length <= this.sent && this.pendingTokens === 0) return [];
    return [this.piece(body.slice(this.sent), body.length)];
  }

  /** Tokens read but in no piece: the answer ended before the call's name was whole. */
  get unreportedTokens(): number {
    return this.name === undefined ? this.pendingTokens : 0;
  }

  /** Whether the whole call was read: its arguments parse. */
  get complete(): boolean {
    if (this.name === undefined) return false;
    try {
      JSON.parse(this.text);
      return true;
    } catch {
      return false;
    }
  }

  private readHead(): boolean {
    const match = HEAD.exec(this.text);
    if (match?.[1] === undefined) return false;
    this.name = JSON.parse(match[1]) as string;
    this.headLength = match[0].length;
    return true;
  }

  private piece(text: string, sentUpTo: number): ToolCallChunk {
    const tokens = this.pendingTokens;
    this.pendingTokens = 0;
    this.sent = Math.max(this.sent, sentUpTo);
    return { index: 0, id: this.id, name: this.name ?? '', arguments: text, tokens };
  }
}
