// "Did you mean …?" for a name that is not one of the known ones: the same name in another case or with `_`/`-`
// (`timeout_seconds`), a known name it begins (`timeout` → `timeoutSeconds`), a slip of a letter or two
// (`dependOn` → `dependsOn`), or what peers call it (Airflow's `depends_on`/`upstream`, GitHub Actions' `needs`).

const normal = (name: string) => name.toLowerCase().replace(/[_-]/g, '');

/** What other tools call a known name (normalized → known). */
const ALIASES: Record<string, string> = {
  dependson: 'dependsOn',
  dependencies: 'dependsOn',
  upstream: 'dependsOn',
  needs: 'dependsOn',
  requires: 'dependsOn',
  maxretries: 'retries',
  retry: 'retries',
  params: 'parameters',
  timeout: 'timeoutSeconds',
};

/** Levenshtein distance, stopping early past `max`. */
function distance(a: string, b: string, max: number): number {
  if (Math.abs(a.length - b.length) > max) return max + 1;
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const row = [i];
    for (let j = 1; j <= b.length; j++) row[j] = Math.min(previous[j]! + 1, row[j - 1]! + 1, previous[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    if (Math.min(...row) > max) return max + 1;
    previous = row;
  }
  return previous[b.length]!;
}

/** The known name `name` most likely meant, or undefined when none is close enough to say so. */
export function closestName(name: string, known: readonly string[]): string | undefined {
  const n = normal(name);
  const byNormal = new Map(known.map((k) => [normal(k), k]));
  const exact = byNormal.get(n);
  if (exact) return exact;
  const alias = ALIASES[n];
  if (alias && known.includes(alias)) return alias;
  if (n.length >= 4) {
    const begun = known.filter((k) => normal(k).startsWith(n));
    if (begun.length === 1) return begun[0];
  }
  const max = n.length >= 8 ? 2 : n.length >= 4 ? 1 : 0;
  if (!max) return undefined;
  const near = known.map((k) => [k, distance(n, normal(k), max)] as const).filter(([, d]) => d <= max);
  near.sort((a, b) => a[1] - b[1]);
  return near.length && (near.length === 1 || near[0]![1] < near[1]![1]) ? near[0]![0] : undefined;
}

/**
 * The name `name` most likely meant (closestName), and up to `limit` known names nearest to it, that one first, then
 * by how few letters differ (then as given): what an error lists when a name is not one of many known ones.
 */
export function nearestNames(name: string, known: readonly string[], limit: number): { closest?: string; names: string[] } {
  const closest = closestName(name, known);
  const n = normal(name);
  const max = Math.max(n.length, ...known.map((k) => k.length));
  const ranked = known
    .filter((k) => k !== closest)
    .map((k, i) => ({ k, i, d: normal(k).includes(n) || n.includes(normal(k)) ? 0 : distance(n, normal(k), max) }))
    .sort((a, b) => a.d - b.d || a.i - b.i)
    .map((r) => r.k);
  return { closest, names: [...(closest ? [closest] : []), ...ranked].slice(0, limit) };
}
