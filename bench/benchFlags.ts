import { FlagError, kebabCase, parseFlags } from '../server/cli/parseFlags.js';

type FlagValue = number | string;

/**
 * A benchmark's flags, strict as the server's (an unknown or misspelt flag names itself and the
 * nearest known one): `defaults` names them (camelCase for --kebab-case) and gives their types.
 * A bad flag prints the problem and the flags, and exits 2.
 */
export function benchFlags<T extends Record<string, FlagValue>>(argv: readonly string[], defaults: T): T {
  try {
    const given = parseFlags(argv, Object.keys(defaults));
    const flags: Record<string, FlagValue> = { ...defaults };
    for (const [key, value] of Object.entries(given)) {
      if (typeof defaults[key] === 'number') {
        const number = Number(value);
        if (!Number.isFinite(number) || number < 0) throw new FlagError(`--${key} needs a number, not "${value}"`);
        flags[key] = number;
      } else flags[key] = value;
    }
    return flags as T;
  } catch (error) {
    if (!(error instanceof FlagError)) throw error;
    const known = Object.entries(defaults).map(([key, value]) => `--${kebabCase(key)} ${value}`);
    process.stderr.write(`${error.message}\nflags (with their defaults): ${known.join(' ')}\n`);
    process.exit(2);
  }
}
