// graphql-js quotes in its errors what it could not take (a variable's value, a literal, a field's name, a token):
// whatever the caller sent comes back bounded (cut past 1,000 characters) and with no control character, over HTTP
// and graphql-ws, as the domain errors do (test/security/error-echo.test.ts).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestApp, type TestApp } from '../harness/app';

let t: TestApp;
beforeAll(async () => {
  t = await startTestApp();
}, 60_000);
afterAll(async () => t?.stop());

const big = `\u001b[31m${'9'.repeat(1_000_000)}x`;
const hasRawControl = (text: string) => [...text].some((c) => c.charCodeAt(0) < 32 && c !== '\n' && c !== '\t');

describe('an error quoting the caller’s input', () => {
  it('is at most ~1,000 characters and escaped, whichever phase made it', async () => {
    const cases: [string, Record<string, unknown>][] = [
      ['mutation ($p: Int) { startRun(workflow: "w", priority: $p) { id } }', { p: big }], // a variable's value
      [`query { runs(first: "${'9'.repeat(1_000_000)}x") { edges { node { id } } } }`, {}], // a literal
      [`query { ${'f'.repeat(1_000_000)} }`, {}], // a field's name
      [`query { runs(first: 1 "${'9'.repeat(1_000_000)}") }`, {}], // a token the parser did not expect
    ];
    for (const [query, variables] of cases) {
      const r = await t.api.raw(query, variables);
      expect(r.errors?.length, query.slice(0, 60)).toBeGreaterThan(0);
      expect(JSON.stringify(r).length, query.slice(0, 60)).toBeLessThan(4_000);
      for (const e of r.errors!) expect(hasRawControl(e.message)).toBe(false);
    }
  });

  it('over graphql-ws too', async () => {
    const failed = await t.api.subscribe('subscription ($id: ID!, $n: Int) { runEvents(runId: $id, after: $n) { __typename } }', { id: 'x', n: big }).then(
      () => '',
      (e) => String(e),
    );
    expect(failed).toMatch(/got invalid value/);
    expect(failed.length).toBeLessThan(4_000);
  });
});
