// Inputs for a workflow's run parameters (see lib/run-form.ts), each labelled, typed and checked as you go; and a
// module's parameter schema as a table.
import type { ComponentChildren } from 'preact';
import { describeSchema, type ParamField, type schemaProperties, toInput } from '../lib/run-form';
import { type Column, DataTable } from './table';

export type FormValues = Record<string, string | boolean>;

export function initialValues(fields: readonly ParamField[], given: Record<string, unknown> = {}): FormValues {
  const values: FormValues = {};
  for (const f of fields) {
    const value = f.name in given ? given[f.name] : f.defaultValue;
    values[f.name] = f.kind === 'boolean' ? Boolean(value) : toInput(f, value);
  }
  return values;
}

export function ParamFields({
  fields,
  values,
  errors,
  onChange,
  idPrefix,
}: {
  fields: readonly ParamField[];
  values: FormValues;
  errors: Record<string, string>;
  onChange(name: string, value: string | boolean): void;
  idPrefix: string;
}) {
  if (fields.length === 0) return <p class="muted">This workflow declares no run parameters.</p>;
  return (
    <div class="param-fields">
      {fields.map((f) => {
        const id = `${idPrefix}-${f.name}`;
        const error = errors[f.name];
        const help = [
          f.description,
          f.required ? 'Required.' : f.hasDefault ? `Default: ${JSON.stringify(f.defaultValue)}.` : null,
          f.schema ? `Accepts ${describeSchema(f.schema)}.` : f.kind === 'any' ? 'Any JSON value; plain text is sent as a string.' : null,
          f.usedBy.length ? `Used by ${f.usedBy.map((u) => `${u.task}.${u.parameter}`).join(', ')}.` : null,
        ]
          .filter(Boolean)
          .join(' ');
        const describedBy = [help ? `${id}-help` : null, error ? `${id}-error` : null].filter(Boolean).join(' ') || undefined;
        const common = {
          id,
          name: f.name,
          'aria-invalid': error ? ('true' as const) : undefined,
          'aria-describedby': describedBy,
          'aria-required': f.required || undefined,
        };
        const value = values[f.name];
        return (
          <div class={`field${error ? ' invalid' : ''}`} key={f.name}>
            {f.kind === 'boolean' ? (
              <label class="check" for={id}>
                <input type="checkbox" {...common} checked={Boolean(value)} onChange={(e) => onChange(f.name, e.currentTarget.checked)} /> {f.name}
              </label>
            ) : (
              <>
                <label for={id}>
                  {f.name}
                  {f.required && <span aria-hidden="true"> *</span>}
                </label>
                {f.kind === 'enum' ? (
                  <select {...common} value={String(value ?? '')} onChange={(e) => onChange(f.name, e.currentTarget.value)}>
                    {!f.required && <option value="">(default)</option>}
                    {f.enumValues.map((v) => (
                      <option key={toInput(f, v)} value={toInput(f, v)}>
                        {toInput(f, v)}
                      </option>
                    ))}
                  </select>
                ) : f.kind === 'json' ? (
                  <textarea {...common} rows={3} spellcheck={false} value={String(value ?? '')} onInput={(e) => onChange(f.name, e.currentTarget.value)} />
                ) : f.kind === 'integer' || f.kind === 'number' ? (
                  <input
                    {...common}
                    type="number"
                    step={f.kind === 'integer' ? 1 : 'any'}
                    min={f.schema?.minimum}
                    max={f.schema?.maximum}
                    value={String(value ?? '')}
                    placeholder={f.hasDefault ? toInput(f, f.defaultValue) : undefined}
                    onInput={(e) => onChange(f.name, e.currentTarget.value)}
                  />
                ) : (
                  <input
                    {...common}
                    type="text"
                    value={String(value ?? '')}
                    placeholder={f.hasDefault ? toInput(f, f.defaultValue) : undefined}
                    onInput={(e) => onChange(f.name, e.currentTarget.value)}
                  />
                )}
              </>
            )}
            {help && (
              <p class="hint" id={`${id}-help`}>
                {help}
              </p>
            )}
            {error && (
              <p class="field-error" id={`${id}-error`}>
                {error}
              </p>
            )}
          </div>
        );
      })}
    </div>
  );
}

export type SchemaProperty = ReturnType<typeof schemaProperties>[number];

/** A parameter schema's properties: the name (required ones marked), what it accepts, and one column of the page's own. */
export function ParameterTable({
  properties,
  nameHeader,
  last,
  empty,
}: {
  properties: readonly SchemaProperty[];
  nameHeader: string;
  last: Column<SchemaProperty>;
  empty: ComponentChildren;
}) {
  const columns: Column<SchemaProperty>[] = [
    {
      header: nameHeader,
      cell: (p) => (
        <>
          <code>{p.name}</code>
          {p.required && <span class="muted"> (required)</span>}
        </>
      ),
    },
    { header: 'Accepts', cell: (p) => describeSchema(p.schema) },
    last,
  ];
  return <DataTable wrap={false} columns={columns} rows={properties} rowKey={(p) => p.name} empty={empty} />;
}
