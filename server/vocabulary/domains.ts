// The data domains a workflow and its runs live in, from the most open to the most guarded.

export const domains = ['experimentation', 'adhoc', 'production'] as const;
export type Domain = (typeof domains)[number];

/** Whether `domain` is at least as guarded as `than` (production ≥ adhoc ≥ experimentation). */
export const atLeastAsGuarded = (domain: Domain, than: Domain): boolean => domains.indexOf(domain) >= domains.indexOf(than);

/** The more guarded of two domains: where data that was under both stays protected. */
export const moreGuarded = (a: Domain, b: Domain): Domain => (atLeastAsGuarded(a, b) ? a : b);
