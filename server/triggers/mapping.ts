// A trigger's parameter mapping: run parameter → JSON pointer (RFC 6901) into the signal's payload (for an HTTP
// trigger, the posted JSON body). Pure, so the HTTP route and the dispatcher map alike and the rules test fast.
import { AtelierError, type ErrorDetail } from '../errors';

const MAX_MAPPED = 100;

/** Checks a mapping's shape; throws one BAD_USER_INPUT naming each bad entry. */
export function checkParameterMap(map: unknown): Record<string, string> {
  if (map === null || map === undefined) return {};
  if (typeof map !== 'object' || Array.isArray(map))
    throw new AtelierError('BAD_USER_INPUT', 'parameterMap must be a JSON object: run parameter → JSON pointer, e.g. {"version": "/dataset/version"}.');
  const entries = Object.entries(map as Record<string, unknown>);
  const problems: ErrorDetail[] = [];
  if (entries.length > MAX_MAPPED) problems.push({ path: 'parameterMap', message: `maps at most ${MAX_MAPPED} parameters` });
  for (const [param, pointer] of entries) {
    if (typeof pointer !== 'string' || (pointer !== '' && !pointer.startsWith('/')) || pointer.length > 500)
      problems.push({ path: `parameterMap.${param}`, message: 'must be a JSON pointer ("" for the whole payload, or "/a/b")' });
  }
  if (problems.length) throw new AtelierError('BAD_USER_INPUT', `Invalid parameterMap: ${problems.map((p) => `${p.path} ${p.message}`).join('; ')}`, problems);
  return map as Record<string, string>;
}

/** The value at `pointer` in `doc`, or undefined when it is not there. */
export function atPointer(doc: unknown, pointer: string): unknown {
  if (pointer === '') return doc;
  let node: unknown = doc;
  for (const raw of pointer.slice(1).split('/')) {
    const key = raw.replace(/~1/g, '/').replace(/~0/g, '~');
    if (node === null || typeof node !== 'object') return undefined;
    if (Array.isArray(node)) {
      if (!/^(0|[1-9]\d*)$/.test(key)) return undefined;
      node = node[Number(key)];
    } else {
      if (!Object.hasOwn(node, key)) return undefined;
      node = (node as Record<string, unknown>)[key];
    }
  }
  return node;
}

/** The run parameters a payload gives: the trigger's fixed ones, overridden by the mapped ones. A pointer that finds nothing is a 400 naming its parameter. */
export function mapParameters(fixed: Record<string, unknown>, map: Record<string, string>, payload: unknown): Record<string, unknown> {
  const out: Record<string, unknown> = { ...fixed };
  const problems: ErrorDetail[] = [];
  for (const [param, pointer] of Object.entries(map)) {
    const value = atPointer(payload, pointer);
    if (value === undefined) problems.push({ path: `parameters.${param}`, message: `the payload has nothing at ${JSON.stringify(pointer)}` });
    else out[param] = value;
  }
  if (problems.length)
    throw new AtelierError(
      'BAD_USER_INPUT',
      `The payload does not fit the trigger's parameter mapping: ${problems.map((p) => `${p.path}: ${p.message}`).join('; ')}. Nothing was started.`,
      problems,
    );
  return out;
}
