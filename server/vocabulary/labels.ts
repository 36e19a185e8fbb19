// Classification labels: a level and a set of categories (PII, UGC, …). A column with no label is UNCLASSIFIED.
// The lattice operations live in governance/labels.ts; these are only the words.

export const levels = ['PUBLIC', 'INTERNAL', 'CONFIDENTIAL', 'RESTRICTED'] as const;
export type Level = (typeof levels)[number];
export const UNCLASSIFIED = 'UNCLASSIFIED' as const;

export interface Label {
  level: Level | typeof UNCLASSIFIED;
  categories: string[];
}

export const declassificationStates = ['PENDING', 'APPROVED', 'REJECTED'] as const;
export type DeclassificationState = (typeof declassificationStates)[number];
