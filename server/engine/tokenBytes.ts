/**
 * The raw bytes of a vocabulary entry whose text is not a whole character on its own, as
 * llama-server gives a piece that is not valid UTF-8: a SentencePiece byte token (`<0xE2>`), or a
 * byte-level BPE entry (GPT-2's vocabularies, gpt-oss's), whose characters stand for bytes.
 * Undefined for an entry that is neither.
 */
export function tokenBytes(entry: string, tokenizerModel: string | undefined): number[] | undefined {
  const byteToken = /^<0x([0-9A-Fa-f]{2})>$/.exec(entry);
  if (byteToken?.[1] !== undefined) return [Number.parseInt(byteToken[1], 16)];
  if (tokenizerModel !== 'gpt2') return undefined;
  const bytes: number[] = [];
  for (const char of entry) {
    const byte = BYTE_OF_CHAR.get(char);
    if (byte === undefined) return undefined;
    bytes.push(byte);
  }
  return bytes;
}

/** GPT-2's bytes_to_unicode, reversed: printable bytes stand for themselves, the others for 256 + n. */
const BYTE_OF_CHAR: ReadonlyMap<string, number> = (() => {
  const map = new Map<string, number>();
  const printable = (byte: number) =>
    (byte >= 0x21 && byte <= 0x7e) || (byte >= 0xa1 && byte <= 0xac) || (byte >= 0xae && byte <= 0xff);
  let next = 0;
  for (let byte = 0; byte < 256; byte++) {
    map.set(String.fromCodePoint(printable(byte) ? byte : 256 + next++), byte);
  }
  return map;
})();
