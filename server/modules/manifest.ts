// The module manifest (`atelier.module.yaml`): its shape, its validation, and the parameter-schema check.
import { Ajv, type ErrorObject, type ValidateFunction } from 'ajv';
import { parse as parseYaml } from 'yaml';
import { AtelierError, type ErrorDetail } from '../errors';
import { MANIFEST_FILE, type ModuleManifest, runtimes } from '../vocabulary';

const nameRe = '^[a-z0-9]([a-z0-9-_.]{0,62}[a-z0-9])?$';

const identRe = '^[A-Za-z_][A-Za-z0-9_.-]{0,127}$';

const portSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['name'],
  properties: {
    name: { type: 'string', pattern: identRe },
    dataset: { type: 'string', pattern: '^[a-z0-9][a-z0-9-_.]*/[A-Za-z0-9][A-Za-z0-9-_.]*$' },
    description: { type: 'string', maxLength: 2000 },
    columns: {
      type: 'array',
      maxItems: 5000,
      items: {
        type: 'object',
        additionalProperties: false,
        required: ['name'],
        properties: {
          name: { type: 'string', minLength: 1, maxLength: 256 },
          type: { type: 'string', maxLength: 128 },
          description: { type: 'string', maxLength: 2000 },
          from: { type: 'array', items: { type: 'string', pattern: '^[^.]+\\..+$' } },
        },
      },
    },
  },
} as const;

const manifestSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['namespace', 'name', 'entrypoint', 'runtime'],
  properties: {
    namespace: { type: 'string', pattern: nameRe },
    name: { type: 'string', pattern: nameRe },
    version: { type: 'string', pattern: '^[A-Za-z0-9][A-Za-z0-9._+-]{0,63}$' },
    description: { type: 'string', maxLength: 2000 },
    entrypoint: { type: 'string', minLength: 1, pattern: '^(?!/)(?!.*\\.\\./).+$' },
    runtime: { enum: runtimes },
    parameters: { type: 'object' },
    resources: {
      type: 'object',
      additionalProperties: false,
      properties: {
        cpu: { type: 'number', exclusiveMinimum: 0 },
        memory: { type: 'string', pattern: '^[0-9]+(Ki|Mi|Gi|Ti)?$' },
        gpus: { type: 'integer', minimum: 0 },
        pool: { type: 'string', pattern: nameRe },
        executor: { type: 'string', pattern: nameRe },
      },
    },
    timeoutSeconds: { type: 'number', exclusiveMinimum: 0, maximum: 7 * 24 * 3600 },
    cache: {
      type: 'object',
      additionalProperties: false,
      properties: { enabled: { type: 'boolean' }, version: { type: 'string' }, ttlSeconds: { type: 'integer', minimum: 1 } },
    },
    test: { type: 'string', minLength: 1 },
    inputs: { type: 'array', maxItems: 100, items: portSchema },
    outputs: { type: 'array', maxItems: 100, items: portSchema },
  },
} as const;

const ajv = new Ajv({ allErrors: true, strict: false });
const validateManifestShape = ajv.compile(manifestSchema);

/** Turns ajv's errors into `{path, message}` pairs a person can act on. */
export function describeAjvErrors(errors: ErrorObject[] | null | undefined, root = ''): ErrorDetail[] {
  return (errors ?? []).map((e) => {
    const path = [root.replace(/\.$/, ''), e.instancePath.replace(/^\//, '').replaceAll('/', '.')].filter(Boolean).join('.');
    if (e.keyword === 'required') return { path: path ? `${path}.${e.params.missingProperty}` : String(e.params.missingProperty), message: 'is required' };
    if (e.keyword === 'additionalProperties') return { path: path || '(root)', message: `unknown field "${e.params.additionalProperty}"` };
    if (e.keyword === 'enum') return { path, message: `must be one of ${(e.params.allowedValues as unknown[]).join(', ')}` };
    return { path: path || '(root)', message: e.message ?? 'is invalid' };
  });
}

/** Parses and validates a manifest; throws INVALID_MANIFEST naming every bad field. */
export function parseManifest(text: string): ModuleManifest {
  let raw: unknown;
  try {
    raw = parseYaml(text);
  } catch (error) {
    throw new AtelierError('INVALID_MANIFEST', `${MANIFEST_FILE} is not valid YAML: ${(error as Error).message}`);
  }
  if (!validateManifestShape(raw)) {
    const details = describeAjvErrors(validateManifestShape.errors);
    throw new AtelierError('INVALID_MANIFEST', `${MANIFEST_FILE} is invalid: ${details.map((d) => `${d.path} ${d.message}`).join('; ')}`, details);
  }
  const manifest = raw as ModuleManifest;
  const problems = checkPorts(manifest);
  if (problems.length) {
    throw new AtelierError('INVALID_MANIFEST', `${MANIFEST_FILE} is invalid: ${problems.map((d) => `${d.path} ${d.message}`).join('; ')}`, problems);
  }
  if (manifest.parameters) {
    try {
      ajv.compile(manifest.parameters);
    } catch (error) {
      throw new AtelierError('INVALID_MANIFEST', `${MANIFEST_FILE}: parameters is not a valid JSON Schema: ${(error as Error).message}`, [
        { path: 'parameters', message: (error as Error).message },
      ]);
    }
  }
  return manifest;
}

/** What the JSON Schema cannot say: unique names, and lineage that names declared input columns. */
function checkPorts(manifest: ModuleManifest): ErrorDetail[] {
  const problems: ErrorDetail[] = [];
  const inputColumns = new Map<string, Set<string>>();
  for (const side of ['inputs', 'outputs'] as const) {
    const seen = new Set<string>();
    manifest[side]?.forEach((port, i) => {
      if (seen.has(port.name)) problems.push({ path: `${side}.${i}.name`, message: `repeats "${port.name}"; names must be unique` });
      seen.add(port.name);
      const columns = new Set<string>();
      port.columns?.forEach((c, j) => {
        if (columns.has(c.name)) problems.push({ path: `${side}.${i}.columns.${j}.name`, message: `repeats column "${c.name}"` });
        columns.add(c.name);
      });
      if (side === 'inputs') inputColumns.set(port.name, columns);
    });
  }
  manifest.outputs?.forEach((port, i) => {
    // Labels of a written dataset are computed per column: without its columns, they cannot be.
    if (port.dataset && !port.columns?.length)
      problems.push({ path: `outputs.${i}.columns`, message: `must list the columns ${port.dataset} is written with, so their labels can be computed` });
  });
  manifest.outputs?.forEach((port, i) => {
    port.columns?.forEach((c, j) => {
      c.from?.forEach((source, k) => {
        const dot = source.indexOf('.');
        const [input, column] = [source.slice(0, dot), source.slice(dot + 1)];
        const columns = inputColumns.get(input);
        const path = `outputs.${i}.columns.${j}.from.${k}`;
        if (!columns) problems.push({ path, message: `names input "${input}", which is not declared under inputs` });
        else if (columns.size && !columns.has(column)) problems.push({ path, message: `names column "${column}", which input "${input}" does not declare` });
      });
    });
  });
  return problems;
}

const parameterValidators = new Map<string, ValidateFunction>();

/** Checks task parameters against a module version's parameter schema; compiled validators are cached per digest. */
export function checkParameters(digest: string, manifest: ModuleManifest, parameters: Record<string, unknown>): ErrorDetail[] {
  if (!manifest.parameters) return [];
  let validate = parameterValidators.get(digest);
  if (!validate) {
    validate = ajv.compile(manifest.parameters);
    parameterValidators.set(digest, validate);
  }
  return validate(parameters) ? [] : describeAjvErrors(validate.errors, 'parameters.');
}
