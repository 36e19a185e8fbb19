// The workflow spec: a DAG of module tasks in YAML or JSON. Parsing and the structural checks that need no
// database (names, dependencies, cycles); resolving modules happens in plan.ts.
import { Ajv } from 'ajv';
import { parse as parseYamlInline } from 'yaml';
import { AtelierError, type ErrorDetail } from '../errors';
import { closestName } from '../errors/did-you-mean';
import { quoted } from '../errors/echo';
import { assertWithinInputLimits, MAX_JSON_DEPTH, textNestsDeeperThan } from '../errors/input-limits';
import { describeAjvErrors, patternWords as manifestWords, nameRe } from '../modules/manifest';
import { domains, type TaskSpec, TIMEOUT_MAX_SECONDS, triggerRules, type WorkflowSpec } from '../vocabulary';
import { parseYaml as parseYamlText } from '../yaml/parse';
import { conditionProblems, MAX_CONDITION_CHARS } from './condition';

const nodeName = '^[A-Za-z_][A-Za-z0-9_-]{0,62}$';
const moduleRef = '^[a-z0-9][a-z0-9-_.]*/[a-z0-9][a-z0-9-_.]*(@[A-Za-z0-9._+-]+)?$';
const workflowRef = '^[a-z0-9]([a-z0-9-_.]{0,62}[a-z0-9])?(@[0-9]+)?$';
const hotClusterName = '^[a-z0-9]([a-z0-9-]{0,62}[a-z0-9])?$';
/** What the spec's patterns ask for, said in words where the pattern was. */
const patternWords: Readonly<Record<string, string>> = {
  ...manifestWords,
  [nodeName]: 'must be 1–63 letters, digits, "_" or "-", starting with a letter or "_"',
  [moduleRef]: 'must be namespace/name, optionally @tag or @version (e.g. "ml/train@latest")',
  [workflowRef]: 'must be a workflow name, optionally @version (e.g. "weekly-report@4")',
  [hotClusterName]: 'must be 1–64 lowercase letters, digits or "-", starting and ending with a letter or digit',
};
const specSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['name', 'tasks'],
  properties: {
    name: { type: 'string', pattern: nameRe },
    description: { type: 'string', maxLength: 2000 },
    domain: { enum: domains },
    parameters: {
      type: 'object',
      propertyNames: { pattern: nodeName },
      additionalProperties: {
        type: 'object',
        additionalProperties: false,
        properties: { default: {}, description: { type: 'string' } },
      },
    },
    timeoutSeconds: { type: 'number', exclusiveMinimum: 0, maximum: TIMEOUT_MAX_SECONDS },
    concurrency: {
      type: 'object',
      additionalProperties: false,
      properties: { maxParallelTasks: { type: 'integer', minimum: 1 }, maxActiveRuns: { type: 'integer', minimum: 1 } },
    },
    tasks: {
      type: 'array',
      minItems: 1,
      maxItems: 50000,
      items: {
        type: 'object',
        additionalProperties: false,
        required: ['name'],
        properties: {
          name: { type: 'string', pattern: nodeName },
          module: { type: 'string', pattern: moduleRef },
          workflow: { type: 'string', pattern: workflowRef },
          map: {
            type: 'object',
            additionalProperties: false,
            required: ['over'],
            properties: { over: {}, as: { type: 'string', pattern: '^[A-Za-z_][A-Za-z0-9_]*$' } },
          },
          models: {
            type: 'object',
            propertyNames: { pattern: '^[A-Za-z_][A-Za-z0-9_]*$' },
            additionalProperties: { type: 'string', pattern: '^[a-z0-9][a-z0-9-_.]*/[a-z0-9][a-z0-9-_.]*(@[A-Za-z0-9._-]+|/[0-9]+)$' },
          },
          parameters: { type: 'object' },
          // (duplicates are checked in checkGraph: ajv's uniqueItems is quadratic, and joins can be 10k wide)
          dependsOn: { type: 'array', items: { type: 'string' } },
          retries: { type: 'integer', minimum: 0, maximum: 20 },
          retryDelaySeconds: { type: 'number', minimum: 0, maximum: 3600 },
          trigger: { enum: triggerRules },
          when: { type: 'string', minLength: 1, maxLength: MAX_CONDITION_CHARS },
          timeoutSeconds: { type: 'number', exclusiveMinimum: 0, maximum: TIMEOUT_MAX_SECONDS },
          pool: { type: 'string' },
          executor: { type: 'string' },
          hotCluster: { type: 'string', pattern: hotClusterName },
          settings: { type: 'object' },
        },
      },
    },
  },
} as const;

const validateShape = new Ajv({ allErrors: true, verbose: true, strict: false }).compile(specSchema);

function specParseError(error: unknown): AtelierError {
  if (error instanceof AtelierError) return error;
  const e = error as { name?: string; code?: string; exhausted?: boolean; timedOut?: boolean; message?: string };
  // The YAML parser recurses: nesting deep enough to exhaust the stack ends here, at once.
  if (e.exhausted || e.name === 'RangeError' || e.code === 'RESOURCE_EXHAUSTION')
    return new AtelierError('INVALID_WORKFLOW', `The workflow spec nests deeper than the parser allows; values may nest at most ${MAX_JSON_DEPTH} levels.`);
  if (e.timedOut) return new AtelierError('INVALID_WORKFLOW', `The workflow spec took too long to parse as YAML (${e.message}); send it as JSON.`);
  return new AtelierError('INVALID_WORKFLOW', `The workflow spec is not valid YAML or JSON: ${e.message}`);
}

const invalid = (message: string, details: ErrorDetail[]) =>
  new AtelierError('INVALID_WORKFLOW', `${message}: ${details.map((d) => `${d.path} ${d.message}`).join('; ')}`, details);

/**
 * Parses a spec sent as text (YAML or JSON) or as a value, off the event loop where the YAML is large
 * (`server/yaml/parse.ts`); throws INVALID_WORKFLOW naming the offending node or field.
 */
export async function readWorkflowSpec(source: string | unknown): Promise<WorkflowSpec> {
  if (typeof source !== 'string') return parseWorkflowSpec(source);
  let raw: unknown;
  try {
    // JSON is YAML too, but the YAML parser is ~50× slower on a 10k-node spec.
    raw = (/^\s*[{[]/.test(source) ? tryJson(source) : undefined) ?? (await parseYamlText(limitedYaml(source)));
  } catch (error) {
    throw specParseError(error);
  }
  return parseWorkflowSpec(raw);
}

/** Parses YAML or JSON text (inline: small specs and tests) or a value into a spec; throws INVALID_WORKFLOW. */
export function parseWorkflowSpec(source: string | unknown): WorkflowSpec {
  let raw = source;
  if (typeof source === 'string') {
    try {
      raw = /^\s*[{[]/.test(source) ? (tryJson(source) ?? parseYamlInline(limitedYaml(source))) : parseYamlInline(limitedYaml(source));
    } catch (error) {
      throw specParseError(error);
    }
  }
  // Before anything walks it recursively (validation, hashing, storing): bounded depth, no NUL characters.
  assertWithinInputLimits(raw, 'The workflow spec', 'INVALID_WORKFLOW', 'spec');
  if (!validateShape(raw)) {
    const spec = raw as Partial<WorkflowSpec>;
    // Name the node rather than its array index: "tasks.3" means little to the person who wrote the file.
    const details = describeAjvErrors(validateShape.errors, '', patternWords).map((d) => ({
      ...d,
      path: (d.path ?? '').replace(/^tasks\.(\d+)/, (m, i) => {
        const name = Array.isArray(spec.tasks) ? spec.tasks[Number(i)]?.name : undefined;
        return typeof name === 'string' ? `tasks.${name}` : m;
      }),
    }));
    throw invalid('The workflow spec is invalid', details);
  }
  const spec = raw as WorkflowSpec;
  checkGraph(spec);
  return spec;
}

/** The most YAML a spec may be: the YAML parser is slow (~7 ms a KiB; large texts are parsed on a worker thread); JSON has no such cap. */
export const MAX_YAML_SPEC_BYTES = 128 * 1024;

function limitedYaml(text: string): string {
  if (text.length > MAX_YAML_SPEC_BYTES)
    throw new AtelierError(
      'INVALID_WORKFLOW',
      `The workflow spec is ${text.length.toLocaleString('en-US')} characters of YAML; YAML specs may have at most 128 KiB, send a larger one as JSON.`,
    );
  if (textNestsDeeperThan(text))
    throw new AtelierError(
      'INVALID_WORKFLOW',
      `The workflow spec nests deeper than ${MAX_JSON_DEPTH} levels; values may nest at most ${MAX_JSON_DEPTH} levels.`,
    );
  return text;
}

function tryJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined; // let the YAML parser report where it goes wrong
  }
}

/** Unique names, known dependencies, no cycles. Linear in nodes + edges. */
function checkGraph(spec: WorkflowSpec): void {
  const byName = new Map<string, TaskSpec>();
  const details: ErrorDetail[] = [];
  for (const task of spec.tasks) {
    if (byName.has(task.name)) details.push({ path: `tasks.${task.name}`, message: 'is defined twice' });
    byName.set(task.name, task);
  }
  for (const task of spec.tasks) {
    if (!task.module === !task.workflow)
      details.push({
        path: `tasks.${task.name}`,
        message: task.module ? 'names both a module and a workflow; a node runs one of them' : 'needs a module or a workflow to run',
      });
    if (task.map && !task.module) details.push({ path: `tasks.${task.name}.map`, message: 'needs a module to map' });
    const from = task.map ? outputRef(task.map.over) : null;
    if (from && !(task.dependsOn ?? []).includes(from.node)) {
      details.push({ path: `tasks.${task.name}.map.over`, message: `reads outputs of "${from.node}", which must be listed in dependsOn` });
    }
    // A run parameter a task uses must be declared: a spec naming an undeclared one could never run.
    for (const [where, name] of runParameterPaths({ parameters: task.parameters ?? {}, ...(task.map ? { map: { over: task.map.over } } : {}) })) {
      if (!Object.hasOwn(spec.parameters ?? {}, name))
        details.push({
          path: `tasks.${task.name}.${where}`,
          message: `uses \${params.${name}}, but the workflow declares no run parameter "${name}"; declare it under parameters (with a default, or pass it when starting a run)`,
        });
    }
    for (const ref of outputRefsIn(task.parameters)) {
      if (!(task.dependsOn ?? []).includes(ref.node))
        details.push({ path: `tasks.${task.name}.parameters`, message: `reads outputs of "${ref.node}", which must be listed in dependsOn` });
    }
    if (task.when !== undefined) details.push(...conditionProblems({ ...task, when: task.when }, spec.parameters ?? {}));
    const seen = new Set<string>();
    for (const dep of task.dependsOn ?? []) {
      if (seen.has(dep)) details.push({ path: `tasks.${task.name}.dependsOn`, message: `lists "${dep}" twice` });
      seen.add(dep);
      if (!byName.has(dep)) details.push({ path: `tasks.${task.name}.dependsOn`, message: `names "${dep}", which is not a task of this workflow` });
      else if (dep === task.name) details.push({ path: `tasks.${task.name}.dependsOn`, message: 'names the task itself' });
    }
  }
  if (details.length) throw invalid('The workflow spec is invalid', details);

  const cycle = findCycle(spec.tasks);
  if (cycle) throw invalid('The workflow has a cycle', [{ path: `tasks.${cycle[0]}`, message: `is part of the cycle ${cycle.join(' → ')}` }]);
}

/** Returns one cycle as a list of node names (first node repeated at the end), or null. Iterative DFS. */
function findCycle(tasks: TaskSpec[]): string[] | null {
  const deps = new Map(tasks.map((t) => [t.name, t.dependsOn ?? []]));
  const state = new Map<string, 1 | 2>(); // 1 = on the stack, 2 = done
  for (const start of deps.keys()) {
    if (state.has(start)) continue;
    const stack: { node: string; next: number }[] = [{ node: start, next: 0 }];
    state.set(start, 1);
    while (stack.length) {
      const frame = stack[stack.length - 1]!;
      const edges = deps.get(frame.node)!;
      if (frame.next < edges.length) {
        const dep = edges[frame.next++]!;
        const s = state.get(dep);
        if (s === 1) {
          const from = stack.findIndex((f) => f.node === dep);
          return [...stack.slice(from).map((f) => f.node), dep];
        }
        if (s === undefined) {
          state.set(dep, 1);
          stack.push({ node: dep, next: 0 });
        }
      } else {
        state.set(frame.node, 2);
        stack.pop();
      }
    }
  }
  return null;
}

const paramRef = /^\$\{params\.([A-Za-z_][A-Za-z0-9_-]*)\}$/;
const outputRefRe = /^\$\{outputs\.([A-Za-z_][A-Za-z0-9_-]*)\.([A-Za-z_][A-Za-z0-9_-]*)\}$/;

/** Every "${outputs.NODE.NAME}" inside a value. */
function outputRefsIn(value: unknown): { node: string; name: string }[] {
  const ref = outputRef(value);
  if (ref) return [ref];
  if (Array.isArray(value)) return value.flatMap(outputRefsIn);
  if (value && typeof value === 'object') return Object.values(value).flatMap(outputRefsIn);
  return [];
}

/** `"${outputs.NODE.NAME}"` → its parts; anything else → null. */
export function outputRef(value: unknown): { node: string; name: string } | null {
  const m = typeof value === 'string' ? outputRefRe.exec(value) : null;
  return m ? { node: m[1]!, name: m[2]! } : null;
}

/** Replaces every "${outputs.NODE.NAME}" in a value with that output; references to outputs that do not exist are listed in `missing`. */
export function substituteOutputs(value: unknown, outputs: Map<string, Record<string, unknown>>, missing: string[]): unknown {
  const ref = outputRef(value);
  if (ref) {
    const out = outputs.get(ref.node);
    if (!out || !Object.hasOwn(out, ref.name)) missing.push(`${ref.node}.${ref.name}`);
    return out?.[ref.name];
  }
  if (Array.isArray(value)) return value.map((v) => substituteOutputs(v, outputs, missing));
  if (value && typeof value === 'object') return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, substituteOutputs(v, outputs, missing)]));
  return value;
}

/**
 * Resolves the run's parameters (declared defaults overlaid by the caller's values) and substitutes
 * "${params.NAME}" strings in task parameters, keeping the parameter's JSON type.
 */
export function resolveRunParameters(spec: WorkflowSpec, given: Record<string, unknown>, options: { partial?: boolean } = {}): Record<string, unknown> {
  const declared = spec.parameters ?? {};
  // Own keys only, here and below: a name such as `constructor` or `toString` is found on every object's prototype.
  const unknown = Object.keys(given).filter((k) => !Object.hasOwn(declared, k));
  if (unknown.length) {
    // The names are the caller's own text: quoted (escaped, cut short), a few of them, each suggestion among the
    // workflow's declared parameters (which whoever may start it may read).
    const shown = unknown.slice(0, 10).map((k) => quoted(k));
    const more = unknown.length > shown.length ? ` and ${unknown.length - shown.length} more` : '';
    throw new AtelierError(
      'BAD_USER_INPUT',
      `Unknown run parameter${unknown.length > 1 ? 's' : ''} ${shown.join(', ')}${more}; workflow "${spec.name}" declares: ${Object.keys(declared).join(', ') || 'none'}`,
      unknown.slice(0, 20).map((k) => {
        const meant = closestName(k, Object.keys(declared));
        return { path: `parameters.${k}`, message: `is not declared by the workflow${meant ? ` (did you mean "${meant}"?)` : ''}` };
      }),
    );
  }
  // Made from entries: a parameter named __proto__ assigned on an object set its prototype instead.
  const entries: [string, unknown][] = [];
  const missing: string[] = [];
  for (const [name, decl] of Object.entries(declared)) {
    if (Object.hasOwn(given, name)) entries.push([name, given[name]]);
    else if (decl.default !== undefined) entries.push([name, decl.default]);
    else missing.push(name);
  }
  const resolved: Record<string, unknown> = Object.fromEntries(entries);
  if (missing.length && !options.partial) {
    throw new AtelierError(
      'BAD_USER_INPUT',
      `Workflow "${spec.name}" needs run parameter${missing.length > 1 ? 's' : ''} ${missing.map((k) => `"${k}"`).join(', ')} (no default); pass ${missing.length > 1 ? 'them' : 'it'} when starting the run.`,
      missing.map((k) => ({ path: `parameters.${k}`, message: 'is required' })),
    );
  }
  return resolved;
}

/**
 * Where a template takes a run parameter whole ("${params.NAME}" strings): path (`parameters.epochs`,
 * `map.over`) → the run parameter's name. Lets errors about a value name the run parameter it came from.
 */
export function runParameterPaths(template: Record<string, unknown>): Map<string, string> {
  const found = new Map<string, string>();
  const visit = (value: unknown, path: string) => {
    if (typeof value === 'string') {
      const m = paramRef.exec(value);
      if (m) found.set(path, m[1]!);
    } else if (Array.isArray(value)) {
      for (const [i, v] of value.entries()) visit(v, `${path}.${i}`);
    } else if (value && typeof value === 'object') for (const [k, v] of Object.entries(value)) visit(v, path ? `${path}.${k}` : k);
  };
  visit(template, '');
  return found;
}

/** Thrown (internally) when a partial substitution meets a parameter that has no value yet. */
export const UNRESOLVED = Symbol('unresolved run parameter');

/**
 * Replaces "${params.NAME}" strings with run parameter values. With `partial` (checking a spec before any run
 * exists), a parameter without a value leaves the result marked by {@link UNRESOLVED} instead of failing.
 */
export function substituteParameters(
  taskName: string,
  template: Record<string, unknown>,
  runParams: Record<string, unknown>,
  options: { partial?: boolean } = {},
): Record<string, unknown> {
  let unresolved = false;
  const visit = (value: unknown, path: string): unknown => {
    if (typeof value === 'string') {
      const m = paramRef.exec(value);
      if (!m) return value;
      if (!Object.hasOwn(runParams, m[1]!) && options.partial) {
        unresolved = true;
        return value;
      }
      if (!Object.hasOwn(runParams, m[1]!)) {
        throw new AtelierError(
          'INVALID_WORKFLOW',
          `Task "${taskName}" uses \${params.${m[1]}} at ${path}, but the run has no such parameter and it has no default`,
          [{ path: `tasks.${taskName}.${path}`, message: `refers to missing run parameter "${m[1]}"` }],
        );
      }
      return runParams[m[1]!];
    }
    if (Array.isArray(value)) return value.map((v, i) => visit(v, `${path}.${i}`));
    if (value && typeof value === 'object') return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, visit(v, `${path}.${k}`)]));
    return value;
  };
  const result = visit(template, 'parameters') as Record<string, unknown>;
  return unresolved ? Object.assign(result, { [UNRESOLVED]: true }) : result;
}
