/** A flag that is not known, lacks its value, or is not a flag at all. The message names it. */
export class FlagError extends Error {
  override name = 'FlagError';
}

/**
 * Strict `--kebab-case value` / `--kebab-case=value` flags into camelCase keys, for the server,
 * the load harness and the benchmarks alike. An unknown or misspelt flag is an error that names it
 * and suggests the nearest known one.
 */
export function parseFlags(argv: readonly string[], known: Iterable<string>): Record<string, string> {
  const keys = new Set(known);
  const flags: Record<string, string> = {};
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] ?? '';
    if (!arg.startsWith('--')) throw new FlagError(`Unexpected argument "${arg}": flags look like --name value`);
    const [name, inline] = arg.slice(2).split('=', 2) as [string, string | undefined];
    const key = camelCase(name);
    if (!keys.has(key)) throw new FlagError(`Unknown flag --${name}${suggestion(key, keys)}`);
    const value = inline ?? argv[++i];
    if (value === undefined) throw new FlagError(`Flag --${name} needs a value`);
    flags[key] = value;
  }
  return flags;
}

export function camelCase(kebab: string): string {
  return kebab.replace(/-([a-z])/g, (_, c: string) => c.toUpperCase());
}

export function kebabCase(camel: string): string {
  return camel.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);
}

/** "; did you mean --connections?" when a known flag is a few edits away. */
function suggestion(key: string, keys: ReadonlySet<string>): string {
  let best: string | undefined;
  let bestDistance = Math.max(2, Math.floor(key.length / 3)) + 1;
  for (const candidate of keys) {
    const distance = editDistance(key.toLowerCase(), candidate.toLowerCase());
    if (distance < bestDistance) [best, bestDistance] = [candidate, distance];
  }
  return best === undefined ? '' : `; did you mean --${kebabCase(best)}?`;
}

/** Levenshtein distance: insertions, deletions and substitutions. */
function editDistance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    for (let j = 1; j <= b.length; j++) {
      const substitution = (previous[j - 1] ?? 0) + (a[i - 1] === b[j - 1] ? 0 : 1);
      current.push(Math.min((previous[j] ?? 0) + 1, (current[j - 1] ?? 0) + 1, substitution));
    }
    previous = current;
  }
  return previous[b.length] ?? 0;
}
