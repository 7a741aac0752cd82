import type { ToolCallChunk } from '../Engine.js';
import type { UpstreamToolCallPiece } from './readStreamEvent.js';

/**
 * The tool calls an upstream streams, as the engine's chunks: OpenAI's deltas name a call's id and
 * name once, on its first piece; the engine's chunks carry both on every piece.
 */
export class UpstreamToolCalls {
  private readonly calls: { id: string; name: string }[] = [];

  get count(): number {
    return this.calls.length;
  }

  /** The chunk of one delta piece; undefined for a piece of a call whose first piece never came. */
  read(piece: UpstreamToolCallPiece): ToolCallChunk | undefined {
    let call = this.calls[piece.index];
    if (call === undefined) {
      if (piece.id === undefined && piece.name === undefined) return undefined;
      call = { id: piece.id ?? `call_upstream_${piece.index}`, name: piece.name ?? '' };
      this.calls[piece.index] = call;
    }
    return { index: piece.index, id: call.id, name: call.name, arguments: piece.arguments, tokens: 1 };
  }
}
