/**
 * Which session's KV cache each sequence holds. A session's next turn goes back to its own
 * sequence when it is free, so only the new tokens are evaluated; otherwise an empty sequence,
 * else the least recently used one (whose session is re-evaluated from history when it returns).
 */
export class SlotTable {
  private readonly resident: Array<{ sessionId: string; usedAt: number } | undefined>;
  private readonly free: Set<number>;
  private clock = 0;

  constructor(slots: number) {
    this.resident = Array.from({ length: slots }, () => undefined);
    this.free = new Set(this.resident.keys());
  }

  get freeCount(): number {
    return this.free.size;
  }

  /** Takes a free slot for `sessionId`; undefined when none is free. */
  acquire(sessionId: string): number | undefined {
    const slot = this.pick(sessionId);
    if (slot === undefined) return undefined;
    this.free.delete(slot);
    this.resident[slot] = { sessionId, usedAt: ++this.clock };
    return slot;
  }

  release(slot: number): void {
    this.free.add(slot);
  }

  private pick(sessionId: string): number | undefined {
    let empty: number | undefined;
    let oldest: number | undefined;
    for (const slot of this.free) {
      const holder = this.resident[slot];
      if (holder?.sessionId === sessionId) return slot;
      if (holder === undefined) empty ??= slot;
      else if (oldest === undefined || holder.usedAt < (this.resident[oldest]?.usedAt ?? 0)) oldest = slot;
    }
    return empty ?? oldest;
  }
}
