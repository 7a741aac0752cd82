const threeDigits = new Intl.NumberFormat('en-US', { maximumSignificantDigits: 3 });
const whole = new Intl.NumberFormat('en-US', { maximumFractionDigits: 0 });

/** A latency for people: 3 significant digits, in ms below a second and in s above ("4.57 ms", "2.41 s"). */
export function formatMs(ms: number): string {
  if (!Number.isFinite(ms)) return '–';
  const rounded = Number(ms.toPrecision(3));
  return rounded >= 1000 ? `${threeDigits.format(ms / 1000)} s` : `${threeDigits.format(rounded)} ms`;
}

/** A count or a rate, whole, with thousands separators ("19,211"). */
export function formatCount(value: number): string {
  return Number.isFinite(value) ? whole.format(value) : '–';
}

/** A ratio b/a to two decimals, or a dash when a is nothing. */
export function formatRatio(a: number, b: number): string {
  return a > 0 && Number.isFinite(b) ? (b / a).toFixed(2) : '–';
}

/** Counts by name in words: "stop 12, length 3", or "none". */
export function formatCounts(counts: Readonly<Record<string, number>>): string {
  const entries = Object.entries(counts).filter(([, count]) => count > 0);
  if (entries.length === 0) return 'none';
  return entries
    .sort(([, x], [, y]) => y - x)
    .map(([name, count]) => `${name} ${formatCount(count)}`)
    .join(', ');
}

/** A nested object as rows of dotted paths and plain values, for a table instead of raw JSON. */
export function flatten(value: unknown, prefix = ''): Array<[string, string]> {
  if (value === null || typeof value !== 'object') return [[prefix || 'value', plain(value)]];
  if (Array.isArray(value) && value.every((item) => item === null || typeof item !== 'object')) {
    return [[prefix || 'value', value.map(plain).join(', ')]];
  }
  return Object.entries(value).flatMap(([key, inner]) => flatten(inner, prefix === '' ? key : `${prefix}.${key}`));
}

function plain(value: unknown): string {
  if (typeof value === 'number') return Number.isInteger(value) ? formatCount(value) : String(value);
  if (value === undefined || value === null) return '–';
  return String(value);
}

export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}
