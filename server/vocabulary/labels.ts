// Classification labels: a level and a set of categories (PII, UGC, …). A column with no label is UNCLASSIFIED.
// The lattice operations live in governance/labels.ts; these are the words and what a category name may be.

export const levels = ['PUBLIC', 'INTERNAL', 'CONFIDENTIAL', 'RESTRICTED'] as const;
export type Level = (typeof levels)[number];
export const UNCLASSIFIED = 'UNCLASSIFIED' as const;

export interface Label {
  level: Level | typeof UNCLASSIFIED;
  categories: string[];
}

/** A category is an upper-case word: `PII`, `CUSTOMER_DATA`. */
const categoryRe = /^[A-Z][A-Z0-9_]{0,63}$/;
export const isCategoryName = (category: string) => categoryRe.test(category);

/** Categories as stored: upper-cased, deduplicated and sorted, with the ones that are not category names set apart. */
export function normaliseCategories(raw: string[]): { categories: string[]; bad: string[] } {
  const upper = raw.map((c) => c.trim().toUpperCase());
  return { categories: [...new Set(upper.filter((c) => categoryRe.test(c)))].sort(), bad: upper.filter((c) => !categoryRe.test(c)) };
}

export const declassificationStates = ['PENDING', 'APPROVED', 'REJECTED'] as const;
export type DeclassificationState = (typeof declassificationStates)[number];
