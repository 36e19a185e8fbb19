// Pieces of the searchRuns filter language (README "Experiments, tags and searching runs") as the runs list and
// compare view write them: a field name quoted where it must be, a text value, a clause added to a filter, and
// the metric and param columns a user picked ("metrics.acc", "params.lr").

export type ColumnKind = 'metrics' | 'params';
export interface PickedColumn {
  kind: ColumnKind;
  name: string;
}

/** `metrics.acc`, or `` metrics.`val.loss` `` where the name is no plain identifier. */
export function fieldName(kind: ColumnKind | 'tags', name: string): string {
  return /^[A-Za-z_][A-Za-z0-9_\-/:]*$/.test(name) ? `${kind}.${name}` : `${kind}.\`${name}\``;
}

/** A text value: 'it''s'. */
export const quoted = (value: string) => `'${value.replaceAll("'", "''")}'`;

/** The filter and one more clause, both kept whole: `(a or b) and c`. */
export function andClause(filter: string, clause: string): string {
  const f = filter.trim();
  if (!f) return clause;
  if (f.includes(clause)) return f;
  return /\bor\b/i.test(f) ? `(${f}) and ${clause}` : `${f} and ${clause}`;
}

/** "metrics.acc,params.lr" (as kept in the address) to columns; anything else is dropped. */
export function parseColumns(text: string | null | undefined): PickedColumn[] {
  const out: PickedColumn[] = [];
  for (const part of (text ?? '').split(',')) {
    const m = /^(metrics|params)\.(.+)$/.exec(part.trim());
    if (m && !out.some((c) => c.kind === m[1] && c.name === m[2])) out.push({ kind: m[1] as ColumnKind, name: m[2]! });
  }
  return out;
}

export const columnsText = (columns: readonly PickedColumn[]) => columns.map((c) => `${c.kind}.${c.name}`).join(',');

/** A metric value as the API sends it (a number, or "NaN", "Infinity", "-Infinity") for a table cell. */
export function formatMetric(value: unknown): string {
  if (value === null || value === undefined) return '—';
  if (typeof value === 'string') return value;
  const v = Number(value);
  return Math.abs(v) >= 1000 || Number.isInteger(v) ? String(v) : String(Number(v.toPrecision(4)));
}

/** A run id as the API takes it; anything else can name no run. */
export const isRunId = (id: string) => /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(id);
