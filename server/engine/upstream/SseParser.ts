/**
 * Server-Sent Events framing: text in (in whatever pieces the socket gives), the `data` of each
 * complete event out. Other fields (`event`, `id`, `retry`) and comments are ignored: OpenAI's
 * streams carry everything in `data`.
 */
export class SseParser {
  private pending = '';
  private data: string[] = [];

  /** Feeds the next piece of the stream; returns the data of every event it completed. */
  push(text: string): string[] {
    this.pending += text;
    const events: string[] = [];
    let start = 0;
    for (;;) {
      const end = lineEnd(this.pending, start);
      if (end === undefined) break;
      const line = this.pending.slice(start, end.at);
      start = end.next;
      if (line === '') {
        if (this.data.length > 0) events.push(this.data.join('\n'));
        this.data = [];
      } else if (line.startsWith('data:')) {
        this.data.push(line.charCodeAt(5) === 32 ? line.slice(6) : line.slice(5));
      }
    }
    this.pending = this.pending.slice(start);
    return events;
  }
}

/** The end of the line that starts at `start` (LF, CRLF or CR), once it is whole. */
function lineEnd(text: string, start: number): { at: number; next: number } | undefined {
  for (let index = start; index < text.length; index++) {
    const code = text.charCodeAt(index);
    if (code === 10) return { at: index, next: index + 1 };
    if (code !== 13) continue;
    // A CR at the very end may be the first half of a CRLF: wait for the next piece.
    if (index + 1 === text.length) return undefined;
    return { at: index, next: text.charCodeAt(index + 1) === 10 ? index + 2 : index + 1 };
  }
  return undefined;
}
