// What an error sends back of the caller's own input, over a real server: the names it echoes (an unknown run
// parameter, an unknown field of a module's parameters, a run id) reach a terminal through the CLI, so they come back
// with every control character escaped (no ESC colour or cursor sequence, no CR rewriting a line), cut to a length a
// person reads, and only so many of them: a request of megabytes is not answered with megabytes.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestApp, type TestApp } from '../harness/app';

let t: TestApp;
const ESC = '\u001b[2J\u001b[31mPWNED\r';
/** Whether `text` holds a control character a terminal acts on (newline and tab aside). */
const hasRawControl = (text: string) =>
  [...text].some((c) => {
    const n = c.charCodeAt(0);
    return n < 9 || (n > 10 && n < 32) || (n >= 0x7f && n <= 0x9f) || (n >= 0x202a && n <= 0x202e);
  });

beforeAll(async () => {
  t = await startTestApp();
  await t.publishFixture('echo');
  await t.createWorkflow({
    name: 'echoing',
    parameters: { greeting: { default: 'hi' } },
    tasks: [{ name: 'say', module: 'test/echo', pool: 'parked', parameters: { message: '${params.greeting}' } }],
  });
}, 60_000);
afterAll(async () => t?.stop());

const startWith = (parameters: Record<string, unknown>) =>
  t.api.raw(`mutation ($p: JSON) { startRun(workflow: "echoing", parameters: $p) { id } }`, { p: parameters });

describe('an unknown run parameter', () => {
  it('comes back escaped, never as a terminal escape', async () => {
    const r = await startWith({ [`greting${ESC}`]: 1 });
    const error = r.errors![0]!;
    expect(error.extensions?.code).toBe('BAD_USER_INPUT');
    const text = JSON.stringify(error); // as the wire has it, decoded
    expect(hasRawControl(error.message)).toBe(false);
    for (const d of error.extensions!.details as { path: string; message: string }[]) {
      expect(hasRawControl(d.message)).toBe(false);
      expect(hasRawControl(d.path)).toBe(false);
    }
    expect(text).toContain('\\\\u001b[31mPWNED');
  });

  it('is answered in a bounded size however many and however long the names sent', async () => {
    const many = Object.fromEntries(Array.from({ length: 20_000 }, (_, i) => [`p${i}_${'x'.repeat(100)}`, i]));
    const long = { ['y'.repeat(1_000_000)]: 1 };
    for (const parameters of [many, long]) {
      const r = await startWith(parameters);
      const error = r.errors![0]!;
      expect(error.extensions?.code).toBe('BAD_USER_INPUT');
      expect(JSON.stringify(r).length).toBeLessThan(64_000);
      expect((error.extensions!.details as unknown[]).length).toBeLessThanOrEqual(100);
    }
    expect((await t.api.gql(`{ runs(first: 5) { edges { node { id } } } }`)).runs.edges).toEqual([]);
  });
});

describe('MLflow', () => {
  it('echoes no megabyte run id and no control character', async () => {
    const res = await fetch(`${t.url}/api/2.0/mlflow/runs/log-parameter`, {
      method: 'POST',
      headers: { authorization: `Bearer ${t.app.adminToken}`, 'content-type': 'application/json' },
      body: JSON.stringify({ run_id: `${ESC}${'z'.repeat(500_000)}`, key: 'k', value: 'v' }),
    });
    const text = await res.text();
    expect(res.status).toBe(404);
    expect(text.length).toBeLessThan(8_000);
    expect(hasRawControl(JSON.parse(text).message)).toBe(false);
  });
});
