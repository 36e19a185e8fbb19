// Column labels as the CLI reads and writes them (`LEVEL{CAT,CAT}`, `name:type[:LEVEL[:CAT,CAT]]`), and hints that
// name the CLI command where an API message names a mutation. Shared by the dataset and declassify commands.
import { InvalidArgumentError } from 'commander';
import { isCategoryName, levels } from '../vocabulary';
import { ApiError } from './errors';
import { commaList } from './options';

export interface LabelView {
  level: string;
  categories: string[];
}
export interface LabelInput {
  level: string;
  categories: string[];
}
export interface ColumnInput {
  name: string;
  type: string;
  label?: LabelInput;
}

/** As the server writes labels: `LEVEL{CAT,CAT}`. */
export const formatLabel = (l: LabelView) => (l.categories.length ? `${l.level}{${l.categories.join(',')}}` : l.level);

export function parseLevel(raw: string, what: string): string {
  const level = raw.trim().toUpperCase();
  if (!(levels as readonly string[]).includes(level)) throw new InvalidArgumentError(`${what}: "${raw}" is not a level; use ${levels.join(', ')}`);
  return level;
}

export function parseCategories(raw: string, what: string): string[] {
  const categories = commaList(raw).map((c) => c.toUpperCase());
  const bad = categories.filter((c) => !isCategoryName(c));
  if (bad.length) throw new InvalidArgumentError(`${what}: categories are words such as PII, UGC or CUSTOMER_DATA, not ${bad.map((b) => `"${b}"`).join(', ')}`);
  return categories;
}

/** `name:type[:LEVEL[:CAT,CAT]]`, e.g. `email:string:CONFIDENTIAL:PII`; without a level the column stays UNCLASSIFIED. */
export function parseColumnSpec(raw: string): ColumnInput {
  const parts = raw.split(':').map((p) => p.trim());
  const usage = 'expected name:type[:LEVEL[:CAT,CAT]], e.g. email:string:CONFIDENTIAL:PII';
  if (parts.length < 2) throw new InvalidArgumentError(`${usage}; "${raw}" has no type`);
  if (parts.length > 4) throw new InvalidArgumentError(`${usage}; "${raw}" has ${parts.length} parts`);
  const [name, type, level, categories] = parts as [string, string, string?, string?];
  if (!name) throw new InvalidArgumentError(`${usage}; "${raw}" has no column name`);
  if (!type) throw new InvalidArgumentError(`column "${name}" has no type: ${usage}`);
  if (level === undefined) return { name, type };
  if (!level) throw new InvalidArgumentError(`column "${name}": categories need a level before them (${usage}); leave both out for UNCLASSIFIED`);
  return {
    name,
    type,
    label: { level: parseLevel(level, `column "${name}"`), categories: categories === undefined ? [] : parseCategories(categories, `column "${name}"`) },
  };
}
/** Adds a hint naming the CLI command for what an API error message calls by its mutation's name. */
export async function hinted<T>(request: Promise<T>, hints: Partial<Record<string, string>>): Promise<T> {
  try {
    return await request;
  } catch (error) {
    const hint = error instanceof ApiError && !error.hint ? hints[error.code] : undefined;
    if (!hint) throw error;
    const { message, code, details } = error as ApiError;
    throw new ApiError(message, code, details, hint);
  }
}
export const print = (lines: string[]) => {
  for (const l of lines) console.log(l);
};

export const LABEL_HINTS = {
  NOT_FOUND: 'list datasets with `atelier dataset list`, and a dataset’s columns with `atelier dataset show NAME`',
  FORBIDDEN:
    'a label only goes up with `atelier dataset label`; to lower one, `atelier declassify request NAME COLUMN LEVEL --reason …` for someone else to approve',
};
