const UNITS: Readonly<Record<string, number>> = {
  '': 1,
  b: 1,
  kb: 1e3,
  mb: 1e6,
  gb: 1e9,
  tb: 1e12,
  kib: 2 ** 10,
  mib: 2 ** 20,
  gib: 2 ** 30,
  tib: 2 ** 40,
};

/**
 * "16GB", "1.5 GiB", "800mb" or a plain byte count into bytes; undefined for anything else (a
 * negative number, an unknown unit). kB, MB, GB are decimal, KiB, MiB, GiB binary.
 */
export function parseByteSize(text: string): number | undefined {
  const match = /^\s*(\d+(?:\.\d+)?)\s*([a-z]*)\s*$/i.exec(text);
  const unit = UNITS[match?.[2]?.toLowerCase() ?? ''];
  if (match?.[1] === undefined || unit === undefined) return undefined;
  return Math.floor(Number(match[1]) * unit);
}
