// A write that found no space: the disk (or a quota) of the data directory or the local object store is full. A leaf,
// as server/errors is: the edges answer it as UNAVAILABLE, saying so and what to do, instead of as an unexpected error.

/** Codes of a full disk or an exhausted quota. */
const FULL = new Set(['ENOSPC', 'EDQUOT']);

/** Whether `error` (or what it wraps) is a write that found no space. */
export function isDiskFull(error: unknown): boolean {
  for (let e = error, depth = 0; e && typeof e === 'object' && depth < 5; depth++) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'string' && FULL.has(code)) return true;
    e = (e as { originalError?: unknown }).originalError ?? (e as { cause?: unknown }).cause;
  }
  return false;
}
