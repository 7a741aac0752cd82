/** A budget of `perMinute` units that refills continuously. */
export class TokenBucket {
  private level: number;
  private updatedAt: number;

  constructor(
    readonly perMinute: number,
    now: number,
  ) {
    this.level = perMinute;
    this.updatedAt = now;
  }

  remaining(now: number): number {
    this.refill(now);
    return Math.floor(this.level);
  }

  /** Milliseconds until `amount` is available (0 if it is now; Infinity past the capacity). */
  waitMs(amount: number, now: number): number {
    this.refill(now);
    if (amount > this.perMinute) return Number.POSITIVE_INFINITY;
    return Math.max(0, Math.ceil(((amount - this.level) * 60_000) / this.perMinute));
  }

  /** Milliseconds until the bucket is full again. */
  resetMs(now: number): number {
    return this.waitMs(this.perMinute, now);
  }

  /** Takes `amount` (which may leave the level negative: a debt settled by refills). */
  take(amount: number, now: number): void {
    this.refill(now);
    this.level -= amount;
  }

  /** Gives back what a reservation did not use. */
  give(amount: number, now: number): void {
    this.refill(now);
    this.level = Math.min(this.perMinute, this.level + amount);
  }

  private refill(now: number): void {
    this.level = Math.min(this.perMinute, this.level + ((now - this.updatedAt) * this.perMinute) / 60_000);
    this.updatedAt = now;
  }
}
