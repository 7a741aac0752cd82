/**
 * Counts the connections following each running generation. When the count falls to zero the
 * generation is kept going for the resume grace period, buffered, in case its client comes back;
 * a new follower (a resume) clears the timer; past it the generation is abandoned.
 */
export class Followers {
  private readonly counts = new Map<string, number>();
  private readonly graceTimers = new Map<string, NodeJS.Timeout>();

  constructor(
    private readonly graceMs: number,
    /** Stops a generation nobody followed through the grace period. */
    private readonly abandon: (genId: string) => void,
  ) {}

  follow(genId: string): void {
    this.counts.set(genId, (this.counts.get(genId) ?? 0) + 1);
    clearTimeout(this.graceTimers.get(genId));
    this.graceTimers.delete(genId);
  }

  /** A follower left: its socket closed (`ended` false) or the generation ended (true). */
  unfollow(genId: string, ended: boolean): void {
    const count = (this.counts.get(genId) ?? 1) - 1;
    if (count > 0) {
      this.counts.set(genId, count);
      return;
    }
    this.counts.delete(genId);
    if (ended) return;
    if (this.graceMs === 0) {
      this.abandon(genId);
      return;
    }
    const timer = setTimeout(() => {
      this.graceTimers.delete(genId);
      this.abandon(genId);
    }, this.graceMs);
    timer.unref();
    this.graceTimers.set(genId, timer);
  }
}
