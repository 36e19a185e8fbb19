// The module manifest (`atelier.module.yaml`): its shape, its validation, and the parameter-schema check.
import { Ajv } from 'ajv';
import { parse as parseYaml } from 'yaml';
import { AtelierError, type ErrorDetail } from '../errors';
import { inputProblem, textNestsDeeperThan } from '../errors/input-limits';
import { MANIFEST_FILE, type ModuleManifest, runtimes, TIMEOUT_MAX_SECONDS } from '../vocabulary';
import { parseYaml as parseYamlText } from '../yaml/parse';
import { checkParameters as checkAgainstSchema, compileParameterSchema, describeAjvErrors, rememberValidator } from './parameter-schema';

export { describeAjvErrors };

export const nameRe = '^[a-z0-9]([a-z0-9-_.]{0,62}[a-z0-9])?$';

const identRe = '^[A-Za-z_][A-Za-z0-9_.-]{0,127}$';
const versionRe = '^[A-Za-z0-9][A-Za-z0-9._+-]{0,63}$';
const entrypointRe = '^(?!/)(?!.*\\.\\./).+$';
const memoryRe = '^[0-9]+(Ki|Mi|Gi|Ti)?$';
const datasetRe = '^[a-z0-9][a-z0-9-_.]*/[A-Za-z0-9][A-Za-z0-9-_.]*$';
const fromRe = '^[^.]+\\..+$';

const portSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['name'],
  properties: {
    name: { type: 'string', pattern: identRe },
    dataset: { type: 'string', pattern: datasetRe },
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
          from: { type: 'array', items: { type: 'string', pattern: fromRe } },
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
    version: { type: 'string', pattern: versionRe },
    description: { type: 'string', maxLength: 2000 },
    entrypoint: { type: 'string', minLength: 1, pattern: entrypointRe },
    runtime: { enum: runtimes },
    parameters: { type: 'object' },
    resources: {
      type: 'object',
      additionalProperties: false,
      properties: {
        cpu: { type: 'number', exclusiveMinimum: 0 },
        memory: { type: 'string', pattern: memoryRe },
        gpus: { type: 'integer', minimum: 0 },
        pool: { type: 'string', pattern: nameRe },
        executor: { type: 'string', pattern: nameRe },
      },
    },
    timeoutSeconds: { type: 'number', exclusiveMinimum: 0, maximum: TIMEOUT_MAX_SECONDS },
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

const ajv = new Ajv({ allErrors: true, verbose: true, strict: false });
const validateManifestShape = ajv.compile(manifestSchema);

const invalid = (details: ErrorDetail[]) =>
  new AtelierError('INVALID_MANIFEST', `${MANIFEST_FILE} is invalid: ${details.map((d) => `${d.path} ${d.message}`).join('; ')}`, details);

/** What the shape's patterns ask for, said in words where the pattern was: `name: must be 1–64 lowercase letters…`. */
export const patternWords: Readonly<Record<string, string>> = {
  [nameRe]: 'must be 1–64 lowercase letters, digits, ".", "_" or "-", starting and ending with a letter or digit',
  [identRe]: 'must be 1–128 letters, digits, "_", "." or "-", starting with a letter or "_"',
  [versionRe]: 'must be 1–64 letters, digits, ".", "_", "+" or "-", starting with a letter or digit (e.g. "1.4.0")',
  [entrypointRe]: 'must be a path inside the module directory (relative, without "..")',
  [memoryRe]: 'must be a whole number of bytes, optionally with Ki, Mi, Gi or Ti (e.g. "4Gi")',
  [datasetRe]: 'must be namespace/name (e.g. "crm/users")',
  [fromRe]: 'must be INPUT.COLUMN (e.g. "users.age")',
};

/** The most a manifest may have: the YAML parser is slow (~7 ms a KiB, more for deep nesting), and runs on the event loop. */
export const MAX_MANIFEST_BYTES = 64 * 1024;

/** The parser's own limits (the stack, its resource checks) reached: answered at once, with the limit to keep. */
const tooDeepToParse = (error: unknown) => error instanceof RangeError || (error as { code?: string }).code === 'RESOURCE_EXHAUSTION';

function parseText(text: string): unknown {
  if (/^\s*\{/.test(text)) {
    try {
      return JSON.parse(text); // JSON is YAML too, parsed ~100× faster
    } catch {
      // let the YAML parser say where it goes wrong
    }
  }
  return parseYaml(text);
}

const tooDeep = () => invalid([{ path: '(root)', message: 'nests deeper than 64 levels; values may nest at most 64 levels' }]);

/** Size and nesting, checked on the text before any parser sees it. */
function checkManifestText(text: string) {
  const bytes = Buffer.byteLength(text);
  if (bytes > MAX_MANIFEST_BYTES) throw invalid([{ path: '(root)', message: `is ${bytes.toLocaleString('en-US')} bytes; a manifest may have at most 64 KiB` }]);
  if (textNestsDeeperThan(text)) throw tooDeep();
}

function manifestParseError(error: unknown): AtelierError {
  if (tooDeepToParse(error) || (error as { exhausted?: boolean }).exhausted) return tooDeep();
  return new AtelierError('INVALID_MANIFEST', `${MANIFEST_FILE} is not valid YAML: ${(error as Error).message}`);
}

/**
 * Parses and validates a manifest; throws INVALID_MANIFEST naming every bad field. With the archive's `digest`,
 * the parameter schema's compiled validator is kept for that version, so runs need not compile it again.
 */
export function parseManifest(text: string, digest?: string): ModuleManifest {
  checkManifestText(text);
  let raw: unknown;
  try {
    raw = parseText(text);
  } catch (error) {
    throw manifestParseError(error);
  }
  return manifestFrom(raw, digest);
}

/** parseManifest for the server: a large YAML manifest is parsed off the event loop (`server/yaml/parse.ts`). */
export async function readManifest(text: string, digest?: string): Promise<ModuleManifest> {
  checkManifestText(text);
  let raw: unknown;
  try {
    raw = /^\s*\{/.test(text) ? (tryJson(text) ?? (await parseYamlText(text))) : await parseYamlText(text);
  } catch (error) {
    throw manifestParseError(error);
  }
  return manifestFrom(raw, digest);
}

function tryJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined; // let the YAML parser say where it goes wrong
  }
}

function manifestFrom(raw: unknown, digest?: string): ModuleManifest {
  const limits = inputProblem(raw, '(root)');
  if (limits)
    throw invalid([
      {
        path: limits.path.replace(/^\(root\)\./, ''),
        message: limits.kind === 'nul' ? 'holds a NUL character; remove it' : 'nests deeper than 64 levels; values may nest at most 64 levels',
      },
    ]);
  if (!validateManifestShape(raw)) {
    throw invalid(fullNameApart(raw, describeAjvErrors(validateManifestShape.errors, '', patternWords)));
  }
  const manifest = raw as ModuleManifest;
  // Every problem at once: the ports' and the parameter schema's, so one push shows all there is to fix.
  const problems = checkPorts(manifest);
  const compiled = manifest.parameters ? compileParameterSchema(manifest.parameters) : null;
  if (compiled && !compiled.validate) problems.push(...compiled.problems);
  if (problems.length) throw invalid(problems);
  if (compiled?.validate && digest) rememberValidator(digest, compiled.validate);
  return manifest;
}

/**
 * `name: examples/train`, the module's full name as the CLI writes it, is the mistake a first manifest makes: its
 * refusal says to write the namespace apart, instead of a pattern and a missing namespace that leave it to be worked out.
 */
function fullNameApart(raw: unknown, details: ErrorDetail[]): ErrorDetail[] {
  const { name, namespace } = (raw ?? {}) as { name?: unknown; namespace?: unknown };
  const parts = typeof name === 'string' && name.length <= 130 && namespace === undefined ? /^([^/\s]+)\/([^/\s]+)$/.exec(name) : null;
  if (!parts) return details;
  const apart = `is the full name "${name}": write its namespace apart, as \`namespace: ${parts[1]}\` and \`name: ${parts[2]}\``;
  return [{ path: 'name', message: apart }, ...details.filter((d) => d.path !== 'name' && d.path !== 'namespace')];
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

/** Checks task parameters against a module version's parameter schema (compiled once per digest). */
export function checkParameters(digest: string, manifest: ModuleManifest, parameters: Record<string, unknown>): ErrorDetail[] {
  return checkAgainstSchema(digest, manifest.parameters, parameters);
}
