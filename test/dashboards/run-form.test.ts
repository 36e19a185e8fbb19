// What the start-run form and the module page say a parameter accepts (dashboards/src/lib/run-form.ts), for the
// bounds JSON Schema can give: both inclusive, open on one side or both (the iris example's learningRate and
// testFraction), or one side only.
import { describe, expect, it } from 'vitest';
import { describeSchema } from '../../dashboards/src/lib/run-form';

describe('describeSchema', () => {
  it.each([
    [{ type: 'integer', minimum: 1, maximum: 1000 }, 'integer, 1–1000'],
    [{ type: 'number', exclusiveMinimum: 0, maximum: 10 }, 'number, > 0 and ≤ 10'],
    [{ type: 'number', exclusiveMinimum: 0, exclusiveMaximum: 1 }, 'number, > 0 and < 1'],
    [{ type: 'integer', minimum: 0 }, 'integer, ≥ 0'],
    [{ type: 'number', maximum: 5 }, 'number, ≤ 5'],
    [{ type: 'string', minLength: 1 }, 'string, length 1–∞'],
    [{ type: 'number' }, 'number'],
  ])('%j → %s', (schema, text) => expect(describeSchema(schema)).toBe(text));
});
