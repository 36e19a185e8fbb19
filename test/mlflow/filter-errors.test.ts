// The MLflow runs/search filter a caller wrote in MLflow's fuller grammar (OR, parentheses, IN, IS NULL, datasets.*)
// is refused saying which part this API does not take and what to write instead, not only the clause's shape.
import { describe, expect, it } from 'vitest';
import { filterSql } from '../../server/tracking/mlflow';

const refusal = (filter: string) => {
  try {
    filterSql(filter);
  } catch (error) {
    return error as { code: string; message: string };
  }
  throw new Error(`"${filter}" was taken`);
};

describe('an MLflow filter this API does not take', () => {
  it.each([
    ["metrics.acc > 0.5 OR params.lr = '0.1'", /clauses join with AND only .*; search once per alternative\.$/],
    ["metrics.acc > 0.5 and (params.lr = '1')", /^Filter clause 2 .*: parentheses are not taken; write the clauses joined by AND\.$/],
    ["attributes.run_id IN ('a', 'b')", /: IN \(…\) is not taken; search once per value, or match several with LIKE\.$/],
    ["tags.team NOT IN ('a')", /: IN \(…\) is not taken/],
    ['tags.team IS NULL', /: IS NULL is not taken; a metrics\., params\. or tags\. clause matches only runs that have that key\.$/],
    [
      "datasets.name = 'train'",
      /^Filter on "datasets\.name": datasets\.\* is not taken; filter on metrics\.KEY, params\.KEY, tags\.KEY or attributes\.KEY instead\.$/,
    ],
    ["datasets.digest IN ('x')", /datasets\.\* is not taken/],
  ])('%s', (filter, message) => {
    const error = refusal(filter);
    expect(error.code).toBe('BAD_USER_INPUT');
    expect(error.message).toMatch(message);
  });

  it('says only the shape where nothing unsupported is used, and reads OR inside a quoted value as a value', () => {
    expect(refusal('metrics.acc >> 0.5').message).toMatch(/is not ENTITY\.KEY OP VALUE \(e\.g\. [^)]*\)\.$/);
    expect(() => filterSql("tags.note = 'this OR that' and params.lr = '(0.1)'")).not.toThrow();
  });
});
