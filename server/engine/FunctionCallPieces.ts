import type { ToolCallChunk } from './Engine.js';

/**
 * node-llama-cpp's function-call parameter chunks as the engine's tool-call chunks: an id per call,
 * and the whitespace the grammar lets a model write after the arguments' JSON held back until more
 * of the arguments follow (at the call's end it is dropped), so that the arguments end where the
 * JSON does.
 */
export class FunctionCallPieces {
  private readonly calls: { id: string; heldWhitespace: string }[] = [];

  constructor(private readonly newId: () => string) {}

  /** The piece of one chunk (its arguments may be empty: it still carries the chunk's tokens). */
  read(
    chunk: { callIndex: number; functionName: string; paramsChunk: string; done: boolean },
    tokens: number,
  ): ToolCallChunk {
    const call = this.calls[chunk.callIndex] ?? { id: this.newId(), heldWhitespace: '' };
    this.calls[chunk.callIndex] = call;
    const text = call.heldWhitespace + chunk.paramsChunk;
    const kept = text.trimEnd();
    call.heldWhitespace = chunk.done ? '' : text.slice(kept.length);
    return { index: chunk.callIndex, id: call.id, name: chunk.functionName, arguments: kept, tokens };
  }
}
