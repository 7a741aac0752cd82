import { describe, expect, it } from 'vitest';
import { ForcedCallReader } from '../../server/engine/ForcedCallReader.js';
import { FunctionCallPieces } from '../../server/engine/FunctionCallPieces.js';

/** Splits a text at every `step` characters, as a model's tokens would. */
function split(text: string, step: number): string[] {
  const pieces: string[] = [];
  for (let at = 0; at < text.length; at += step) pieces.push(text.slice(at, at + step));
  return pieces;
}

describe('ForcedCallReader: a forced {"name", "arguments"} answer as tool-call pieces', () => {
  const answer = '{ "name": "get_weather", "arguments": {"city": "Paris", "days": {"n": 2}} }\n';

  it.each([1, 2, 3, 7, 100])('streams the arguments exactly, whatever the split (%i characters a piece)', (step) => {
    const reader = new ForcedCallReader('call_1');
    const pieces = split(answer, step).flatMap((text) => reader.push(text, 1));
    pieces.push(...reader.end());
    expect(reader.complete).toBe(true);
    expect(pieces.map((piece) => piece.arguments).join('')).toBe('{"city": "Paris", "days": {"n": 2}}');
    expect(new Set(pieces.map((piece) => `${piece.id} ${piece.name} ${piece.index}`))).toEqual(
      new Set(['call_1 get_weather 0']),
    );
    // Every token is counted once, on some piece.
    expect(pieces.reduce((sum, piece) => sum + piece.tokens, 0)).toBe(split(answer, step).length);
  });

  it('hands out nothing before the name is known, and is not complete when cut short', () => {
    const reader = new ForcedCallReader('call_1');
    expect(reader.push('{"name": "get_wea', 3)).toEqual([]);
    expect(reader.push('ther", "arguments": {"city": "Pa', 3).map((piece) => piece.arguments)).toEqual([
      '{"city": "Pa',
    ]);
    expect(reader.complete).toBe(false);
  });
});

describe('FunctionCallPieces: node-llama-cpp parameter chunks as tool-call pieces', () => {
  it('gives each call one id and drops the whitespace after the arguments', () => {
    let ids = 0;
    const pieces = new FunctionCallPieces(() => `call_${++ids}`);
    const read = (callIndex: number, paramsChunk: string, done = false) =>
      pieces.read({ callIndex, functionName: 'f', paramsChunk, done }, 1);
    const first = [read(0, '{"a": '), read(0, '1}'), read(0, '\n\n'), read(0, '', true)];
    expect(first.map((piece) => piece.arguments).join('')).toBe('{"a": 1}');
    expect(first.every((piece) => piece.id === 'call_1')).toBe(true);
    expect(read(1, '{ }', true)).toMatchObject({ index: 1, id: 'call_2', arguments: '{ }' });
    // Whitespace held back comes out once more of the arguments follow it.
    expect([read(2, '{"a":'), read(2, ' '), read(2, '2}', true)].map((piece) => piece.arguments)).toEqual([
      '{"a":',
      '',
      ' 2}',
    ]);
  });
});
