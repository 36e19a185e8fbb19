// Hostile GraphQL documents against the real server, over HTTP and graphql-ws: each is refused at validation
// with a typed error before any resolver runs, and the server keeps answering.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestApp, type TestApp } from '../harness/app';
import { apiClient } from '../harness/client';

let t: TestApp;

beforeAll(async () => {
  t = await startTestApp({ ATELIER_MAX_REQUEST_KB: '64' });
  await t.publishFixture('echo');
});
afterAll(async () => {
  await t?.stop();
});

/** `{ modules { versions { module { versions { … } } } } }`, `levels` module→versions pairs deep. */
function deep(levels: number): string {
  let inner = 'id';
  for (let i = 0; i < levels; i++) inner = `versions { module { ${inner} } }`;
  return `{ modules { ${inner} } }`;
}

const messages = (r: { errors?: { message: string }[] }) => (r.errors ?? []).map((e) => e.message).join('\n');

/** Refused: errors, and no data at all (nothing resolved). */
function refused(r: { data?: unknown; errors?: unknown[] }) {
  expect(r.errors?.length).toBeGreaterThan(0);
  expect(r.data ?? null).toBeNull();
}

describe('hostile documents', () => {
  it('refuses deep nesting', async () => {
    expect((await t.api.raw(deep(2))).errors).toBeUndefined();
    const r = await t.api.raw(deep(6));
    refused(r);
    expect(messages(r)).toMatch(/depth/i);
  });

  it('refuses an alias flood (100+ aliases)', async () => {
    const aliases = Array.from({ length: 150 }, (_, i) => `a${i}: viewer { name }`).join(' ');
    const r = await t.api.raw(`{ ${aliases} }`);
    refused(r);
    expect(messages(r)).toMatch(/aliases/i);
  });

  it('refuses cyclic fragments', async () => {
    const r = await t.api.raw(
      `query { modules { ...A } } fragment A on Module { versions { module { ...B } } } fragment B on Module { versions { module { ...A } } }`,
    );
    refused(r);
    expect(messages(r)).toMatch(/Cannot spread fragment "A" within itself/);
  });

  it('refuses a huge document by its token count, and a costly wide one by its cost', async () => {
    const wide = Array.from({ length: 5000 }, () => 'name').join(' ');
    const huge = await t.api.raw(`{ viewer { ${wide} } }`);
    refused(huge);
    expect(messages(huge)).toMatch(/token/i);
    let level = 'id '.repeat(400); // repeated selections merge at execution, but each one counts towards the cost
    for (let i = 0; i < 4; i++)
      level = `id version digest sizeBytes manifest source createdAt entrypoint runtime parameterSchema ref deprecated module { id name namespace fullName description versions { ${level} } }`;
    const costly = await t.api.raw(`{ modules { versions { ${level} } } }`);
    refused(costly);
    expect(messages(costly)).toMatch(/cost/i);
  });

  it('answers every limit it refuses with a typed code and what to do instead', async () => {
    let exploding = 'fragment F0 on Query { __typename }';
    for (let i = 1; i < 40; i++) exploding += ` fragment F${i} on Query { ...F${i - 1} ...F${i - 1} }`;
    const aliases = Array.from({ length: 150 }, (_, i) => `a${i}: viewer { name }`).join(' ');
    const directives = Array.from({ length: 30 }, () => '@include(if: true)').join(' ');
    for (const [limit, document] of [
      ['depth', deep(6)],
      ['aliases', `{ ${aliases} }`],
      ['cost', `query { ...F39 } ${exploding}`],
      ['directives', `{ viewer ${directives} { name } }`],
    ] as const) {
      const r = await t.api.raw(document);
      refused(r);
      expect(r.errors?.[0]?.extensions?.code, limit).toBe('GRAPHQL_VALIDATION_FAILED');
      expect(r.errors?.[0]?.message, limit).toContain('split it into several requests');
      expect(r.errors?.[0]?.message, limit).not.toMatch(/^Syntax Error/);
    }
  });

  it('suggests no field names to a caller probing the schema', async () => {
    const r = await t.api.raw('{ viewr { name } }');
    refused(r);
    expect(messages(r)).not.toMatch(/Did you mean/);
  });

  it('refuses batched requests and anything unauthenticated, introspection included', async () => {
    const batch = await fetch(`${t.url}/graphql`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${t.app.adminToken}` },
      body: JSON.stringify([{ query: '{ viewer { name } }' }, { query: '{ viewer { name } }' }]),
    });
    expect(batch.status).toBeGreaterThanOrEqual(400);
    const anonymous = await apiClient(t.url, null).raw('{ __schema { types { name } } }');
    expect(anonymous.status).toBe(401);
    expect(anonymous.errors?.[0]?.extensions?.code).toBe('UNAUTHENTICATED');
  });

  it('applies the same limits to subscriptions over graphql-ws', async () => {
    const aliases = Array.from({ length: 100 }, (_, i) => `a${i}: runStatus`).join(' ');
    await expect(t.api.subscribe(`subscription { allRunEvents { ... on RunStatusEvent { ${aliases} } } }`, {})).rejects.toThrow(/Aliases limit of 30/);
  });

  it('refuses an oversized request body, sent with a length or chunked, and an oversized graphql-ws message', async () => {
    const big = JSON.stringify({ query: 'query ($v: JSON) { viewer { name } }', variables: { v: 'x'.repeat(100 * 1024) } });
    const post = (body: BodyInit, extra: Record<string, string> = {}) =>
      fetch(`${t.url}/graphql`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${t.app.adminToken}`, ...extra },
        body,
        duplex: 'half',
      } as RequestInit);
    const withLength = await post(big);
    expect(withLength.status).toBe(413);
    expect((await withLength.json()).errors[0]).toMatchObject({
      extensions: { code: 'PAYLOAD_TOO_LARGE' },
      message: expect.stringMatching(/ATELIER_MAX_REQUEST_KB/),
    });
    // No content length: a stream, read only up to the limit.
    const bytes = new TextEncoder().encode(big);
    const chunked = await post(
      new ReadableStream({
        start(c) {
          for (let i = 0; i < bytes.length; i += 8192) c.enqueue(bytes.slice(i, i + 8192));
          c.close();
        },
      }),
    );
    expect(chunked.status).toBe(413);
    // Under the limit, the same path answers.
    expect((await (await post(JSON.stringify({ query: '{ viewer { name } }' }))).json()).data.viewer.name).toBe('admin');
    const closed = await t.api.subscribe(`subscription ($v: JSON) { allRunEvents { __typename } }`, { v: 'x'.repeat(100 * 1024) }).then(
      () => null,
      (e: { code?: number }) => e,
    );
    expect(closed?.code).toBe(1009); // "message too big"
  });

  it('keeps answering ordinary requests afterwards', async () => {
    expect((await t.api.gql('{ viewer { name } }')).viewer.name).toBe('admin');
  });
});
