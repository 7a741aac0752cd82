/**
 * Delivers streamed chunks on the next turn of the event loop rather than inside
 * node-llama-cpp's token callback. By then its batch loop has already handed the next decode to
 * a worker thread, so the work chunks cause downstream (encoding frames, socket writes) runs on
 * the main thread while the decode runs, instead of delaying the next decode.
 */
export class DeferredDelivery {
  private pending: Array<() => void> = [];
  private scheduled = false;

  push(task: () => void): void {
    this.pending.push(task);
    if (this.scheduled) return;
    this.scheduled = true;
    setImmediate(() => this.flush());
  }

  /** Runs everything waiting now; a generation calls it before it reports its end. */
  flush(): void {
    this.scheduled = false;
    const tasks = this.pending;
    this.pending = [];
    for (const task of tasks) task();
  }
}
