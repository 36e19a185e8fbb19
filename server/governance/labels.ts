// Classification labels and their lattice. A label is a level (PUBLIC < INTERNAL < CONFIDENTIAL < RESTRICTED)
// and a set of categories (PII, UGC, CUSTOMER_DATA, …). The join of two labels is the higher level with the
// union of categories; `a ≤ b` when a's level is at most b's and a's categories are all in b's. A column with
// no label is UNCLASSIFIED: above everything for enforcement, and reported as needing classification.

import { type Label, levels, UNCLASSIFIED } from '../vocabulary';

export const unclassified = (): Label => ({ level: UNCLASSIFIED, categories: [] });
/** The label of a stored row (a `column_labels` row or alike); no row: UNCLASSIFIED. */
export const labelOf = (row: { level: string; categories: string[] } | undefined): Label =>
  row ? { level: row.level as Label['level'], categories: row.categories } : unclassified();
export const PUBLIC_LABEL: Label = { level: 'PUBLIC', categories: [] };

const rank = (level: Label['level']) => (level === UNCLASSIFIED ? levels.length : levels.indexOf(level));

const sortedUnion = (a: string[], b: string[]) => [...new Set([...a, ...b])].sort();

/** The least label at or above both. */
export function join(a: Label, b: Label): Label {
  return { level: rank(a.level) >= rank(b.level) ? a.level : b.level, categories: sortedUnion(a.categories, b.categories) };
}

/** The join of every label; PUBLIC with no categories (the bottom) for none. */
export const joinAll = (labels: Iterable<Label>): Label => [...labels].reduce(join, PUBLIC_LABEL);

/** `a ≤ b` in the lattice: b may hold everything a may. UNCLASSIFIED is above every classified label. */
export function leq(a: Label, b: Label): boolean {
  if (b.level === UNCLASSIFIED) return true;
  if (a.level === UNCLASSIFIED) return false;
  return rank(a.level) <= rank(b.level) && a.categories.every((c) => b.categories.includes(c));
}

export const sameLabel = (a: Label, b: Label) => leq(a, b) && leq(b, a);

export function formatLabel(label: Label): string {
  return label.categories.length ? `${label.level}{${label.categories.join(',')}}` : label.level;
}

export interface LineageColumn {
  name: string;
  /** `input.column` sources; `[]` for none; undefined when unknown. */
  from?: string[];
}

/**
 * The computed label of each output column: the join of its declared sources' labels (PUBLIC for `from: []`),
 * or of every input column when its lineage is unknown. A source column that does not exist (or has no label) counts as
 * UNCLASSIFIED, so a gap in what is known can only raise a label, never lower it.
 */
export function propagate(outputs: LineageColumn[], inputs: Map<string, Map<string, Label>>): Map<string, Label> {
  const known = [...inputs.values()].flatMap((columns) => [...columns.values()]);
  // An opaque step (no declared input columns) may have read anything: its unknown-lineage columns stay unclassified.
  const everything = known.length ? joinAll(known) : unclassified();
  const result = new Map<string, Label>();
  for (const column of outputs) {
    if (column.from === undefined) {
      result.set(column.name, everything);
      continue;
    }
    result.set(
      column.name,
      joinAll(
        column.from.map((source) => {
          const dot = source.indexOf('.');
          return inputs.get(source.slice(0, dot))?.get(source.slice(dot + 1)) ?? unclassified();
        }),
      ),
    );
  }
  return result;
}
