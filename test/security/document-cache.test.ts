// yoga keeps parsed documents by their text; a document may be as long as a request, since one long string literal is
// a single token (armor's token limit never sees its length). Different long documents must not stay in memory after
// they are answered: 1,024 of them at 4 MB held ~8 GB with yoga's default cache. Short ones are still kept (the same
// document object each time, which the input guard's per-document check relies on).
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { startTestApp, type TestApp } from '../harness/app';

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

let t: TestApp;
beforeAll(async () => {
  t = await startTestApp();
}, 60_000);
afterAll(async () => t?.stop());

const ask = (query: string) =>
  fetch(`${t.url}/graphql`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${t.app.adminToken}` },
    body: JSON.stringify({ query }),
  }).then((r) => r.json() as Promise<{ errors?: { extensions?: { code?: string } }[] }>);

it('keeps no long document parsed once it is answered', async () => {
  const settled = () => {
    gc();
    gc();
    return process.memoryUsage().heapUsed;
  };
  await ask(`{ __typename }`);
  const before = settled();
  for (let i = 0; i < 40; i++) {
    // valid to parse, refused at validation (no such argument): the parse is what would be kept
    const r = await ask(`query { __typename(pad: "${i}${'a'.repeat(2_000_000)}") }`);
    expect(r.errors?.[0]?.extensions?.code).toBe('GRAPHQL_VALIDATION_FAILED');
  }
  const grown = (settled() - before) / 1e6;
  console.log(`heap after 40 different 2 MB documents: ${grown.toFixed(0)} MB more (kept whole: ~160 MB or more)`);
  expect(grown).toBeLessThan(60);
}, 120_000);
