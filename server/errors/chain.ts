// The error and those it wraps, outermost first: graphql-js and envelop wrap what a resolver threw (`originalError`),
// drivers and fetch the failure under theirs (`cause`). Five deep at most: a cycle of causes ends there.
export function errorChain(error: unknown): object[] {
  const found: object[] = [];
  for (let e: unknown = error, depth = 0; e && typeof e === 'object' && depth < 5; depth++) {
    found.push(e);
    e = (e as { originalError?: unknown }).originalError ?? (e as { cause?: unknown }).cause;
  }
  return found;
}

/** Whether the error, or one it wraps, carries one of these codes (a driver's, Postgres's SQLSTATE, the OS's). */
export function wrapsCode(error: unknown, codes: ReadonlySet<string>): boolean {
  return errorChain(error).some((e) => {
    const code = (e as { code?: unknown }).code;
    return typeof code === 'string' && codes.has(code);
  });
}
