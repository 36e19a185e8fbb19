// What every MLflow REST endpoint shares (server/http/routes/mlflow.ts, mlflow-registry.ts): the endpoint shape,
// parsing a request's parameters as MLflow clients send them (protobuf JSON: int64 as strings, NaN as "NaN"), and
// an error that answers with a specific MLflow error_code.
import type { ObjectStore } from '../artifacts/store';
import type { Db } from '../db/client';
import { AtelierError, badInput, type ErrorCode } from '../errors';
import type { Caller } from '../tracking/access';
import type { LiveFeed } from '../tracking/live';
import type { KeyValue } from '../tracking/logging';

export type Params = Record<string, unknown>;
export interface Endpoint {
  methods: string[];
  /**
   * A POST that only reads (a search with its filter in the body). Every other call but a GET writes: it is refused
   * from the token alone, before its body (up to 1 MB) is read, when the token may change nothing over MLflow.
   */
  reads?: true;
  handle(ctx: { db: Db; feed: LiveFeed; store: ObjectStore; caller: Caller; p: Params; method: string }): Promise<unknown>;
}

/** A domain error answered with this MLflow error_code and HTTP status (instead of those its code maps to). */
export class MlflowError extends AtelierError {
  constructor(
    code: ErrorCode,
    readonly mlflowCode: string,
    readonly mlflowStatus: number,
    message: string,
  ) {
    super(code, message);
  }
}

/** What Atelier's registry does not do by design (its versions are immutable, aliases keep their history). */
export const notImplemented = (message: string) => new MlflowError('BAD_USER_INPUT', 'NOT_IMPLEMENTED', 501, message);

export const str = (p: Params, name: string, required = true): string => {
  const v = p[name];
  if (v === undefined || v === null || v === '') {
    if (required) throw badInput(`Missing value for required parameter '${name}'.`);
    return '';
  }
  if (typeof v !== 'string') throw badInput(`Parameter '${name}' must be a string.`);
  return v;
};
export const int = (p: Params, name: string): number | undefined => {
  const v = p[name];
  if (v === undefined || v === null || v === '') return undefined;
  const n = typeof v === 'string' ? Number(v) : v;
  if (typeof n !== 'number' || !Number.isSafeInteger(n)) throw badInput(`Parameter '${name}' must be an integer.`);
  return n;
};
/** A float as MLflow sends it: a number, or "NaN"/"Infinity"/"-Infinity" (protobuf JSON). */
export const float = (v: unknown, name: string): number => {
  if (typeof v === 'number') return v;
  if (typeof v === 'string' && /^(NaN|-?Infinity|[-+]?(\d+\.?\d*|\.\d+)(e[-+]?\d+)?)$/i.test(v.trim())) return Number(v.trim());
  throw badInput(`${name} must be a number (or "NaN", "Infinity", "-Infinity"); got ${JSON.stringify(v)}.`);
};
export const list = (p: Params, name: string): unknown[] => {
  const v = p[name];
  if (v === undefined || v === null) return [];
  if (!Array.isArray(v)) throw badInput(`Parameter '${name}' must be a list.`);
  return v;
};
export const keyValues = (p: Params, name: string): KeyValue[] =>
  list(p, name).map((item, i) => {
    const { key, value } = (item ?? {}) as Params;
    if (typeof key !== 'string' || (typeof value !== 'string' && typeof value !== 'number'))
      throw badInput(`${name}[${i}] must be {"key": string, "value": string}.`);
    return { key, value: String(value) };
  });
