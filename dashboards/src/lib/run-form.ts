// Builds a start-run form from a workflow spec: one field per declared run parameter, typed by the JSON
// schema of the module parameters it feeds ("${params.NAME}" in a task's parameters), else by its default.

type JsonSchema = {
  type?: string | string[];
  enum?: unknown[];
  minimum?: number;
  maximum?: number;
  exclusiveMinimum?: number;
  exclusiveMaximum?: number;
  minLength?: number;
  maxLength?: number;
  pattern?: string;
  description?: string;
  default?: unknown;
  properties?: Record<string, JsonSchema>;
  items?: JsonSchema;
  required?: string[];
};

export type FieldKind = 'string' | 'integer' | 'number' | 'boolean' | 'enum' | 'json' | 'any';

export interface Usage {
  task: string;
  parameter: string;
  module: string;
}

export interface ParamField {
  name: string;
  description: string | null;
  kind: FieldKind;
  enumValues: unknown[];
  schema: JsonSchema | null;
  /** No default: the run cannot start without it. */
  required: boolean;
  hasDefault: boolean;
  defaultValue: unknown;
  usedBy: Usage[];
}

export interface SpecTask {
  name: string;
  module?: string;
  workflow?: string;
  dependsOn?: string[];
  parameters?: Record<string, unknown>;
  map?: { over: unknown; as?: string };
  /** A CEL condition: the node runs only when it holds. */
  when?: string;
}

export interface SpecShape {
  name?: string;
  description?: string;
  parameters?: Record<string, { default?: unknown; description?: string }>;
  tasks?: SpecTask[];
}

const paramRef = /^\$\{params\.([A-Za-z_][A-Za-z0-9_-]*)\}$/;

export const asSpec = (spec: unknown): SpecShape => (spec && typeof spec === 'object' ? (spec as SpecShape) : {});

/** Module refs the spec's tasks use, as written (`ns/name`, `ns/name@tag`). */
export const moduleRefsOf = (spec: SpecShape) => [...new Set((spec.tasks ?? []).map((t) => t.module).filter((m): m is string => Boolean(m)))];

/** `ns/name` → `ns/name@latest`, as the server resolves it. */
export const withTag = (ref: string) => (ref.includes('@') ? ref : `${ref}@latest`);

export function runParameterFields(spec: SpecShape, schemas: ReadonlyMap<string, unknown>): ParamField[] {
  const usages = new Map<string, { usage: Usage; schema: JsonSchema | null }[]>();
  for (const task of spec.tasks ?? []) {
    const moduleSchema = task.module ? ((schemas.get(task.module) as JsonSchema | null | undefined) ?? null) : null;
    const visit = (value: unknown, path: string[], schema: JsonSchema | null) => {
      if (typeof value === 'string') {
        const m = paramRef.exec(value);
        if (m) {
          const list = usages.get(m[1]!) ?? [];
          list.push({ usage: { task: task.name, parameter: path.join('.'), module: task.module ?? task.workflow ?? '' }, schema });
          usages.set(m[1]!, list);
        }
        return;
      }
      if (value && typeof value === 'object' && !Array.isArray(value)) {
        for (const [key, inner] of Object.entries(value)) visit(inner, [...path, key], schema?.properties?.[key] ?? null);
      }
    };
    visit(task.parameters ?? {}, [], moduleSchema);
    if (task.map && typeof task.map.over === 'string') visit(task.map.over, ['map.over'], { type: 'array' });
  }

  return Object.entries(spec.parameters ?? {}).map(([name, declared]) => {
    const uses = usages.get(name) ?? [];
    const schema = uses.find((u) => u.schema && (u.schema.type || u.schema.enum))?.schema ?? null;
    const hasDefault = declared && 'default' in declared;
    return {
      name,
      description: declared?.description ?? schema?.description ?? null,
      kind: kindOf(schema, hasDefault ? declared.default : undefined),
      enumValues: schema?.enum ?? [],
      schema,
      required: !hasDefault,
      hasDefault,
      defaultValue: hasDefault ? declared.default : undefined,
      usedBy: uses.map((u) => u.usage),
    };
  });
}

function kindOf(schema: JsonSchema | null, defaultValue: unknown): FieldKind {
  if (schema?.enum?.length) return 'enum';
  const type = Array.isArray(schema?.type) ? schema.type.find((t) => t !== 'null') : schema?.type;
  if (type === 'integer' || type === 'number' || type === 'boolean' || type === 'string') return type;
  if (type === 'array' || type === 'object') return 'json';
  switch (typeof defaultValue) {
    case 'number':
      return 'number';
    case 'boolean':
      return 'boolean';
    case 'string':
      return 'string';
    case 'object':
      return defaultValue === null ? 'any' : 'json';
    default:
      return 'any';
  }
}

/** The text an input starts with for a value. */
export function toInput(field: ParamField, value: unknown): string {
  if (value === undefined) return '';
  if (field.kind === 'json' || field.kind === 'any' || field.kind === 'enum')
    return typeof value === 'string' && field.kind !== 'json' ? value : JSON.stringify(value);
  return String(value);
}

export type Parsed = { ok: true; value: unknown; omit: boolean } | { ok: false; error: string };

/** Turns an input's text into the parameter value, or a message saying what is wrong with it. */
export function parseInput(field: ParamField, raw: string | boolean): Parsed {
  if (field.kind === 'boolean') return { ok: true, value: Boolean(raw), omit: false };
  const text = String(raw).trim();
  if (text === '') {
    if (field.required) return { ok: false, error: 'Required: this parameter has no default.' };
    return { ok: true, value: undefined, omit: true };
  }
  const s = field.schema ?? {};
  switch (field.kind) {
    case 'integer':
    case 'number': {
      const n = Number(text);
      if (!Number.isFinite(n)) return { ok: false, error: 'Enter a number.' };
      if (field.kind === 'integer' && !Number.isInteger(n)) return { ok: false, error: 'Enter a whole number.' };
      if (s.minimum !== undefined && n < s.minimum) return { ok: false, error: `Must be at least ${s.minimum}.` };
      if (s.maximum !== undefined && n > s.maximum) return { ok: false, error: `Must be at most ${s.maximum}.` };
      if (s.exclusiveMinimum !== undefined && n <= s.exclusiveMinimum) return { ok: false, error: `Must be more than ${s.exclusiveMinimum}.` };
      if (s.exclusiveMaximum !== undefined && n >= s.exclusiveMaximum) return { ok: false, error: `Must be less than ${s.exclusiveMaximum}.` };
      return { ok: true, value: n, omit: false };
    }
    case 'enum': {
      const match = field.enumValues.find((v) => toInput(field, v) === text);
      return match === undefined ? { ok: false, error: 'Choose one of the listed values.' } : { ok: true, value: match, omit: false };
    }
    case 'json': {
      try {
        return { ok: true, value: JSON.parse(text), omit: false };
      } catch {
        return { ok: false, error: 'Enter valid JSON.' };
      }
    }
    case 'any': {
      try {
        return { ok: true, value: JSON.parse(text), omit: false };
      } catch {
        return { ok: true, value: text, omit: false }; // plain text is a string
      }
    }
    default: {
      if (s.minLength !== undefined && text.length < s.minLength) return { ok: false, error: `At least ${s.minLength} characters.` };
      if (s.maxLength !== undefined && text.length > s.maxLength) return { ok: false, error: `At most ${s.maxLength} characters.` };
      if (s.pattern && !safeTest(s.pattern, text)) return { ok: false, error: `Must match ${s.pattern}.` };
      return { ok: true, value: String(raw), omit: false };
    }
  }
}

/** Every field's input parsed: the parameters to send, and a message per field that did not parse. */
export function parseFields(
  fields: readonly ParamField[],
  values: Record<string, string | boolean>,
): { parameters: Record<string, unknown>; errors: Record<string, string> } {
  const parameters: Record<string, unknown> = {};
  const errors: Record<string, string> = {};
  for (const f of fields) {
    const parsed = parseInput(f, values[f.name] ?? '');
    if (!parsed.ok) errors[f.name] = parsed.error;
    else if (!parsed.omit) parameters[f.name] = parsed.value;
  }
  return { parameters, errors };
}

function safeTest(pattern: string, text: string): boolean {
  try {
    return new RegExp(pattern, 'u').test(text);
  } catch {
    return true; // a pattern the browser cannot read is left to the server
  }
}

/** A short description of what a schema accepts: "integer, 1–100". */
export function describeSchema(schema: JsonSchema | null | undefined): string {
  if (!schema) return 'any';
  const type = Array.isArray(schema.type) ? schema.type.join(' | ') : (schema.type ?? (schema.enum ? 'one of' : 'any'));
  const parts: string[] = [type];
  if (schema.enum) parts.push(schema.enum.map((v) => JSON.stringify(v)).join(', '));
  const range = describeRange(schema);
  if (range) parts.push(range);
  if (schema.minLength !== undefined || schema.maxLength !== undefined) parts.push(`length ${schema.minLength ?? 0}–${schema.maxLength ?? '∞'}`);
  return parts.join(', ');
}

/** A number's bounds in words: `1–1000` when both are inclusive, else each side alone (`> 0 and ≤ 10`, `≥ 0`). */
function describeRange(schema: JsonSchema): string | null {
  const bound = (inclusive: number | undefined, exclusive: number | undefined) =>
    exclusive !== undefined ? { at: exclusive, open: true } : inclusive !== undefined ? { at: inclusive, open: false } : null;
  const low = bound(schema.minimum, schema.exclusiveMinimum);
  const high = bound(schema.maximum, schema.exclusiveMaximum);
  if (low && high && !low.open && !high.open) return `${low.at}–${high.at}`;
  const sides = [low ? `${low.open ? '>' : '≥'} ${low.at}` : '', high ? `${high.open ? '<' : '≤'} ${high.at}` : ''].filter(Boolean);
  return sides.length ? sides.join(' and ') : null;
}

/** The properties of a module's parameter schema, as rows for a table. */
export function schemaProperties(schema: unknown): { name: string; schema: JsonSchema; required: boolean }[] {
  const s = schema as JsonSchema | null | undefined;
  if (!s?.properties) return [];
  const required = new Set(s.required ?? []);
  return Object.entries(s.properties).map(([name, p]) => ({ name, schema: p, required: required.has(name) }));
}
