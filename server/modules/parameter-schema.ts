// A module's parameter schema (the `parameters` JSON Schema of its manifest): user-supplied, so it is bounded in
// size at publish (a huge schema blocks the event loop while ajv compiles it), its patterns run on a linear-time
// engine (RE2) so no parameter value can make a pattern backtrack for minutes, patterns RE2 cannot run
// (backreferences, lookaround) are refused at publish naming the field, and each module version's validator is
// compiled once and kept (bounded) by digest.
import { Ajv, type ErrorObject, type ValidateFunction } from 'ajv';
import type { RegExpEngine } from 'ajv/dist/types';
import { RE2JS } from 're2js';
import type { ErrorDetail } from '../errors';
import { closestName } from '../errors/did-you-mean';
import { MAX_ERROR_DETAILS, quoted } from '../errors/echo';

export const SCHEMA_LIMITS = { depth: 32, keysPerObject: 200, nodes: 1_000, patternLength: 1_000 } as const;

/** Compiles a JSON Schema `pattern` for RE2; throws (with RE2's reason) on what RE2 cannot run. */
function re2(pattern: string): RegExp | { test(s: string): boolean } {
  // translateRegExp maps JavaScript's syntax (\u0041, named groups) onto RE2's, but turns `\k<name>` into
  // literal text: refuse that backreference here rather than let it silently change meaning.
  if (/\\k</.test(pattern)) throw new Error('named backreferences (\\k<name>) are not supported');
  return RE2JS.compile(RE2JS.translateRegExp(pattern));
}

const re2Engine: RegExpEngine = Object.assign((pattern: string) => re2(pattern), { code: 'RE2JS' });

/** User-supplied parameter schemas only; the manifest's and spec's own schemas use fixed, safe patterns. */
// inlineRefs: false: a $ref is compiled once as its own function, never copied into every place that uses it.
// optimize: false: ajv's code optimisation pass costs more than it saves on schemas compiled once (3–5× on wide anyOf).
const parameterAjv = new Ajv({ allErrors: true, verbose: true, strict: false, inlineRefs: false, code: { regExp: re2Engine, optimize: false } });

/**
 * Turns ajv's errors into `{path, message}` pairs a person can act on. `patternWords` says in words what a pattern of
 * the caller's own schema asks for (`must be 1–64 lowercase letters…`), said instead of the pattern.
 */
export function describeAjvErrors(errors: ErrorObject[] | null | undefined, root = '', patternWords: Readonly<Record<string, string>> = {}): ErrorDetail[] {
  const all = errors ?? [];
  // As many as an error carries (an object of a million unknown fields is a million errors): the rest counted.
  const described = all.slice(0, all.length > MAX_ERROR_DETAILS ? MAX_ERROR_DETAILS - 1 : all.length).map((e): ErrorDetail => {
    const path = [root.replace(/\.$/, ''), e.instancePath.replace(/^\//, '').replaceAll('/', '.')].filter(Boolean).join('.');
    if (e.keyword === 'required') return { path: path ? `${path}.${e.params.missingProperty}` : String(e.params.missingProperty), message: 'is required' };
    if (e.keyword === 'additionalProperties') {
      // The validators are verbose, so the error carries the object's schema and with it the names it knows.
      const known = Object.keys((e.parentSchema as { properties?: Record<string, unknown> } | undefined)?.properties ?? {});
      const meant = closestName(String(e.params.additionalProperty), known);
      // No near name: the names it takes, so the reader need not look them up (a long list shortened).
      const takes = known.length > 12 ? `${known.slice(0, 12).join(', ')}, …` : known.join(', ');
      const hint = meant ? ` (did you mean "${meant}"?)` : known.length ? ` (it takes ${takes})` : '';
      return { path: path || '(root)', message: `unknown field ${quoted(String(e.params.additionalProperty))}${hint}` };
    }
    if (e.keyword === 'enum') return { path, message: `must be one of ${(e.params.allowedValues as unknown[]).join(', ')}` };
    const words = e.keyword === 'pattern' && Object.hasOwn(patternWords, String(e.params.pattern)) ? patternWords[String(e.params.pattern)] : undefined;
    if (words) return { path: path || '(root)', message: words };
    return { path: path || '(root)', message: e.message ?? 'is invalid' };
  });
  if (described.length < all.length) described.push({ message: `… and ${all.length - described.length} more` });
  return described;
}

const n = (x: number) => x.toLocaleString('en-US');

/** The first size limit `schema` breaks (depth, keys of one object, nodes in all), walked without recursion. */
function sizeProblem(schema: unknown, root: string): ErrorDetail | null {
  let nodes = 0;
  const stack: [unknown, string, number][] = [[schema, root, 1]];
  while (stack.length) {
    const [v, path, depth] = stack.pop()!;
    if (++nodes > SCHEMA_LIMITS.nodes)
      return { path: root, message: `has more than ${n(SCHEMA_LIMITS.nodes)} schema nodes; a parameter schema may have at most ${n(SCHEMA_LIMITS.nodes)}` };
    if (v === null || typeof v !== 'object') continue;
    if (depth > SCHEMA_LIMITS.depth)
      return { path, message: `nests deeper than ${SCHEMA_LIMITS.depth} levels; a parameter schema may nest at most ${SCHEMA_LIMITS.depth} levels` };
    const entries = Array.isArray(v) ? v.map((x, i) => [String(i), x] as const) : Object.entries(v);
    if (!Array.isArray(v) && entries.length > SCHEMA_LIMITS.keysPerObject)
      return {
        path,
        message: `has ${n(entries.length)} keys; an object in a parameter schema may have at most ${n(SCHEMA_LIMITS.keysPerObject)} properties`,
      };
    for (const [key, child] of entries) stack.push([child, `${path}.${key}`, depth + 1]);
  }
  return null;
}

const schemaMaps = ['properties', 'patternProperties', 'definitions', '$defs', 'dependentSchemas', 'dependencies'];
const schemaLists = ['items', 'prefixItems', 'allOf', 'anyOf', 'oneOf'];
const schemaOnes = [
  'not',
  'if',
  'then',
  'else',
  'additionalProperties',
  'additionalItems',
  'contains',
  'propertyNames',
  'unevaluatedItems',
  'unevaluatedProperties',
];

function patternProblem(pattern: string, path: string, what: string): ErrorDetail | null {
  if (pattern.length > SCHEMA_LIMITS.patternLength)
    return { path, message: `${what} is ${n(pattern.length)} characters long; patterns may have at most ${n(SCHEMA_LIMITS.patternLength)}` };
  try {
    re2(pattern);
    return null;
  } catch (error) {
    return {
      path,
      message: `${what} ${JSON.stringify(pattern.slice(0, 100))} cannot run on the linear-time regex engine (RE2 has no backreferences or lookaround; rewrite it without them): ${(error as Error).message}`,
    };
  }
}

/** Every `pattern` and `patternProperties` key the schema holds where ajv would compile it. */
function patternProblems(schema: unknown, root: string): ErrorDetail[] {
  const problems: ErrorDetail[] = [];
  const stack: [unknown, string][] = [[schema, root]];
  const isObject = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === 'object' && !Array.isArray(v);
  while (stack.length) {
    const [s, path] = stack.pop()!;
    if (!isObject(s)) continue;
    if (typeof s.pattern === 'string') {
      const p = patternProblem(s.pattern, `${path}.pattern`, 'pattern');
      if (p) problems.push(p);
    }
    if (isObject(s.patternProperties))
      for (const key of Object.keys(s.patternProperties)) {
        const p = patternProblem(key, `${path}.patternProperties`, 'patternProperties key');
        if (p) problems.push(p);
      }
    for (const k of schemaMaps) if (isObject(s[k])) for (const [key, child] of Object.entries(s[k])) stack.push([child, `${path}.${k}.${key}`]);
    for (const k of schemaLists) {
      const v = s[k];
      if (Array.isArray(v)) v.forEach((child, i) => void stack.push([child, `${path}.${k}.${i}`]));
      else stack.push([v, `${path}.${k}`]);
    }
    for (const k of schemaOnes) stack.push([s[k], `${path}.${k}`]);
  }
  return problems;
}

/**
 * Checks a parameter schema at publish and compiles it: the size limits first (so compiling stays fast), then
 * every pattern, then ajv itself. Returns the validator, or the problems naming the fields.
 */
export function compileParameterSchema(schema: object, root = 'parameters'): { validate?: ValidateFunction; problems: ErrorDetail[] } {
  const size = sizeProblem(schema, root);
  if (size) return { problems: [size] };
  const patterns = patternProblems(schema, root);
  if (patterns.length) return { problems: patterns };
  try {
    const validate = parameterAjv.compile(schema);
    return { validate, problems: [] };
  } catch (error) {
    return { problems: [{ path: root, message: `is not a valid JSON Schema: ${(error as Error).message}` }] };
  } finally {
    parameterAjv.removeSchema(schema); // ajv keeps every compiled schema otherwise; the cache below is bounded
  }
}

const MAX_CACHED_VALIDATORS = 500;
const validators = new Map<string, ValidateFunction>();

/** Keeps a module version's compiled validator (the least recently used goes past MAX_CACHED_VALIDATORS). */
export function rememberValidator(digest: string, validate: ValidateFunction): void {
  validators.delete(digest);
  validators.set(digest, validate);
  if (validators.size > MAX_CACHED_VALIDATORS) validators.delete(validators.keys().next().value!);
}

/**
 * Checks `parameters` against a module version's schema, compiled once per digest (at publish, or on first use in
 * this process). A version published before the limits existed that breaks them answers with its problems.
 */
export function checkParameters(digest: string, schema: object | undefined, parameters: Record<string, unknown>): ErrorDetail[] {
  if (!schema) return [];
  let validate = validators.get(digest);
  if (!validate) {
    const compiled = compileParameterSchema(schema, 'schema');
    if (!compiled.validate) return compiled.problems.map((p) => ({ path: 'parameters', message: `cannot be checked: the module's ${p.path} ${p.message}` }));
    validate = compiled.validate;
  }
  rememberValidator(digest, validate);
  return validate(parameters) ? [] : describeAjvErrors(validate.errors, 'parameters.');
}
