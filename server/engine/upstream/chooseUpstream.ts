/** An upstream that could take a generation: healthy, serving its model, not tried for it yet. */
export type Candidate = { id: number; inFlight: number; capacity: number };

/**
 * Which upstream takes a generation: the one that served its conversation last (`preferred`)
 * while it has room, since its prompt cache is warm there; else the least loaded by share of
 * capacity in use, ties taken in turn from `turn` so that new conversations spread out.
 * Undefined when every candidate is full: never more than an upstream's capacity.
 */
export function chooseUpstream(
  candidates: readonly Candidate[],
  preferred: number | undefined,
  turn: number,
): number | undefined {
  const open = candidates.filter((candidate) => candidate.inFlight < candidate.capacity);
  if (open.some((candidate) => candidate.id === preferred)) return preferred;
  let best: Candidate | undefined;
  for (let step = 0; step < open.length; step++) {
    const candidate = open[(turn + step) % open.length] as Candidate;
    if (best === undefined || candidate.inFlight * best.capacity < best.inFlight * candidate.capacity) best = candidate;
  }
  return best?.id;
}
