// The data domains a workflow and its runs live in, from the most open to the most guarded.

export const domains = ['experimentation', 'adhoc', 'production'] as const;
export type Domain = (typeof domains)[number];
