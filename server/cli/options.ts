// Option parsers shared by the CLI's commands.
import { type Command, InvalidArgumentError } from 'commander';
import { CliError } from './errors';

/** Collects a repeatable option into a list. */
export const collect = (value: string, previous: string[] = []) => [...previous, value];

/** `name=value` → [name, value], the value parsed as JSON when it can be (200 → number, true → boolean, {"a":1} → object). */
export function splitAssignment(raw: string, name = 'key'): [string, unknown] {
  const eq = raw.indexOf('=');
  if (eq <= 0) throw new InvalidArgumentError(`expected ${name}=value, got "${raw}"`);
  const text = raw.slice(eq + 1);
  try {
    return [raw.slice(0, eq).trim(), JSON.parse(text)];
  } catch {
    return [raw.slice(0, eq).trim(), text]; // a plain string
  }
}

/** `key=value` into a map of parameters. */
export function parseParam(raw: string, previous: Record<string, unknown> = {}): Record<string, unknown> {
  const [key, value] = splitAssignment(raw);
  return { ...previous, [key]: value };
}

/** A whole number, negative ones too (a run's priority); the server checks its bounds. */
export function wholeNumber(raw: string): number {
  const n = Number(raw);
  if (raw.trim() === '' || !Number.isInteger(n)) throw new InvalidArgumentError(`expected a whole number, got "${raw}"`);
  return n;
}

/**
 * The control plane's base address (--url, ATELIER_URL): http or https, trailing slashes dropped, and the GraphQL
 * endpoint `npm start` prints (…/graphql) taken as the address it is served from, a mistake easily made.
 */
export function controlPlaneUrl(raw: string): string {
  const text = raw.trim();
  let protocol = '';
  try {
    protocol = new URL(text).protocol;
  } catch {
    // reported below
  }
  if (protocol !== 'http:' && protocol !== 'https:') {
    throw new InvalidArgumentError(`expected the control plane's address, like http://127.0.0.1:4000 (the Dashboard line \`npm start\` prints), got "${raw}"`);
  }
  return text.replace(/\/+$/, '').replace(/\/graphql$/, '');
}

/** A number of seconds (a run's time limit); the server checks its bounds. */
export function seconds(raw: string): number {
  const n = Number(raw);
  if (raw.trim() === '' || !Number.isFinite(n)) throw new InvalidArgumentError(`expected a number of seconds, got "${raw}"`);
  return n;
}

export function positiveInt(raw: string): number {
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError('expected a whole number ≥ 1');
  return n;
}

/** `7d`, `12h`, `30m` or an ISO 8601 date-time → the ISO time it stands for. */
export function parseSince(raw: string): string {
  const m = /^(\d+)([dhm])$/.exec(raw);
  if (m) return new Date(Date.now() - Number(m[1]) * { d: 86_400_000, h: 3_600_000, m: 60_000 }[m[2] as 'd' | 'h' | 'm']).toISOString();
  if (Number.isNaN(Date.parse(raw))) throw new InvalidArgumentError(`expected a period such as 7d, 12h or 30m, or an ISO 8601 date-time, got "${raw}"`);
  return new Date(raw).toISOString();
}

/** `run rerun`'s --from and --node together: --node alone means --from nodes; each without the other is refused. */
export function rerunFrom(raw: string, defaulted: boolean, nodes: string[] | undefined): 'FAILED' | 'ALL' | 'NODES' {
  const from = nodes?.length && defaulted ? 'NODES' : raw.toUpperCase();
  if (from !== 'FAILED' && from !== 'ALL' && from !== 'NODES') throw new CliError(`--from must be failed, all or nodes (got "${raw}")`);
  if (from === 'NODES' && !nodes?.length) throw new CliError('--from nodes needs the nodes to execute again: add --node NODE (repeatable)');
  if (from !== 'NODES' && nodes?.length)
    throw new CliError(`--node goes with --from nodes; --from ${raw} executes again ${from === 'ALL' ? 'every task' : 'what did not succeed'}`);
  return from;
}

/** A repeatable option naming one of `values`, in any case (`--status failed`), collected upper-cased. */
export function upperChoices(values: readonly string[]) {
  return (raw: string, previous: string[] = []): string[] => {
    const value = raw.trim().toUpperCase();
    if (!values.includes(value)) throw new InvalidArgumentError(`expected one of ${values.join(', ')}, got "${raw}"`);
    return [...previous, value];
  };
}

/** Comma-separated values (`a,b`), trimmed, empty ones dropped. */
export const commaList = (raw: string): string[] =>
  raw
    .split(',')
    .map((v) => v.trim())
    .filter(Boolean);

/** Lines of a left-aligned table with a header row; the last column is not padded. */
export function formatTable(header: string[], rows: string[][]): string[] {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  return [header, ...rows].map((r) =>
    r
      .map((cell, i) => (i === r.length - 1 ? cell : cell.padEnd(widths[i]!)))
      .join('  ')
      .trimEnd(),
  );
}

/** An option's value that must be a JSON object (`--metadata '{"framework": "sklearn"}'`). */
export function jsonObject(raw: string): Record<string, unknown> {
  let value: unknown;
  try {
    value = JSON.parse(raw);
  } catch {
    // reported below
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value))
    throw new InvalidArgumentError(`expected a JSON object, e.g. '{"key": "value"}', got ${JSON.stringify(raw)}`);
  return value as Record<string, unknown>;
}

/**
 * Refuses a change command (`schedule update`, `trigger update`, …) given nothing to change, before anything is sent:
 * the server would answer with the thing as it was and record a change of nothing. `notChanges` are options that
 * only go with a change (a reason).
 */
export function assertSomeChange(command: Command, notChanges: string[] = []): void {
  const changes = command.options.filter((o) => !o.hidden && !notChanges.includes(o.attributeName()));
  if (changes.some((o) => command.getOptionValueSource(o.attributeName()) === 'cli')) return;
  const path: string[] = [];
  for (let c: Command | null = command; c?.parent; c = c.parent) path.unshift(c.name());
  throw new CliError(
    `nothing to change: give at least one of ${changes.map((o) => o.long).join(', ')} (\`atelier ${path.join(' ')} --help\` says what each does)`,
  );
}
