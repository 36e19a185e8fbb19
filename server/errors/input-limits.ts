// Limits every value a caller sends must keep, whatever the edge (GraphQL variables and literals, a git hook's
// body, a spec or manifest file): JSON nests at most MAX_JSON_DEPTH levels, so no recursive code below (JSON
// serialisation, canonical hashing, schema validation) can run out of stack; and no string or key holds NUL,
// which Postgres cannot store in text or jsonb. Checked without recursion, in one pass.
import { AtelierError, type ErrorCode } from './index';

export const MAX_JSON_DEPTH = 64;

export interface InputProblem {
  /** Where: `root` followed by the keys and indexes down to the offending value. */
  path: string;
  kind: 'depth' | 'nul';
}

const isPlainContainer = (v: unknown): v is Record<string, unknown> | unknown[] => {
  if (Array.isArray(v)) return true;
  if (v === null || typeof v !== 'object') return false;
  const proto = Object.getPrototypeOf(v);
  return proto === Object.prototype || proto === null;
};

/** The first place where `value` nests deeper than `maxDepth` containers or holds a NUL character, or null. */
export function inputProblem(value: unknown, root: string, maxDepth = MAX_JSON_DEPTH): InputProblem | null {
  const stack: [unknown, string, number][] = [[value, root, 0]];
  while (stack.length) {
    const [v, path, depth] = stack.pop()!;
    if (typeof v === 'string') {
      if (v.includes('\0')) return { path, kind: 'nul' };
      continue;
    }
    if (!isPlainContainer(v)) continue; // numbers, booleans, null, uploaded files
    if (depth >= maxDepth) return { path, kind: 'depth' };
    if (Array.isArray(v)) {
      for (let i = v.length - 1; i >= 0; i--) stack.push([v[i], `${path}.${i}`, depth + 1]);
      continue;
    }
    for (const key of Object.keys(v).reverse()) {
      if (key.includes('\0')) return { path: `${path}.${JSON.stringify(key)}`, kind: 'nul' };
      stack.push([v[key], `${path}.${key}`, depth + 1]);
    }
  }
  return null;
}

/** What to tell the caller about `problem` in `what` (a variable, an argument, a file). */
export function describeInputProblem(what: string, problem: InputProblem, maxDepth = MAX_JSON_DEPTH): string {
  return problem.kind === 'nul'
    ? `${what} holds a NUL character (\\u0000) at ${problem.path}; text cannot contain NUL, remove it.`
    : `${what} nests deeper than ${maxDepth} levels (at ${problem.path.length > 200 ? `${problem.path.slice(0, 200)}…` : problem.path}); JSON values may nest at most ${maxDepth} levels, flatten it.`;
}

/** Throws `code` (BAD_USER_INPUT unless given) when `value` breaks a limit, naming `what` and where. */
export function assertWithinInputLimits(value: unknown, what: string, code: ErrorCode = 'BAD_USER_INPUT', root = what): void {
  const problem = inputProblem(value, root);
  if (problem) throw new AtelierError(code, describeInputProblem(what, problem), [{ path: problem.path, message: describeInputProblem(what, problem) }]);
}

/**
 * Whether YAML or JSON text opens more than `maxDepth` brackets at once: checked before a (recursive, slow) YAML
 * parser sees the text. Brackets inside strings count too, so it errs towards refusing only what nests absurdly.
 */
export function textNestsDeeperThan(text: string, maxDepth = MAX_JSON_DEPTH): boolean {
  let depth = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x5b || c === 0x7b) {
      if (++depth > maxDepth) return true;
    } else if ((c === 0x5d || c === 0x7d) && depth > 0) depth--;
  }
  return false;
}
