// Issue 17 item 7 for search, compare, tags and notes: a production run's metrics, params and tags are run data.
// Someone who may not read them (a member of a team without the production grant, a viewer) can neither find the
// run by them, nor learn of it from the order, the page sizes or the cursors of a search (each answer is exactly the
// one given when the run does not exist), nor compare it (it is missing like an unknown id), nor tag or note it
// (refused and audited, nothing written).
import { randomUUID } from 'node:crypto';
import { eq } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runs } from '../../server/db/tables/runs';
import { startTestApp, type TestApp } from '../harness/app';
import type { ApiClient, GqlResult } from '../harness/client';
import { seedRun } from '../tracking/seed';

let t: TestApp;
let alice: ApiClient; // team ml, granted production
let bob: ApiClient; // team web, no production grant
let vera: ApiClient; // a viewer in no team
let prod = '';
let lab1 = '';
let lab2 = '';

const SEARCH = `query ($f: String, $o: [String!], $first: Int, $after: String) {
  searchRuns(filter: $f, orderBy: $o, first: $first, after: $after) { edges { cursor node { id } } pageInfo { hasNextPage endCursor } } }`;
const COMPARE = `query ($ids: [ID!]!) { compareRuns(ids: $ids, allParams: true) { runs { id } missing params { key values } metrics { name } series { runId } } }`;
const code = (r: GqlResult) => r.errors?.[0]?.extensions?.code;

/** Every page of a search, one run a page: the ids, cursors and page flags a caller sees. */
async function walk(client: ApiClient, f: string, o: string[] = []) {
  const pages: unknown[] = [];
  let after: string | undefined;
  for (let i = 0; i < 10; i++) {
    const result = await client.raw(SEARCH, { f, o, first: 1, after });
    pages.push(result.errors ? { errors: result.errors.map((e) => [e.extensions?.code, e.message]) } : result.data.searchRuns);
    if (result.errors || !result.data.searchRuns.pageInfo.hasNextPage) break;
    after = result.data.searchRuns.pageInfo.endCursor;
  }
  return pages;
}

const probes: [string, string[]][] = [
  ['metrics.acc > 0.9', []],
  ['metrics.acc >= 0', ['metrics.acc DESC']],
  ['', ['metrics.acc DESC']],
  ['', ['metrics.acc ASC']],
  ["params.lr = '0.5'", []],
  ['params.lr > 0', ['params.lr DESC']],
  ["tags.secret = 'yes'", []],
  ['', ['tags.secret DESC', 'created ASC']],
  ["tags.secret LIKE 'y%' or metrics.acc > 0.5", []],
  ["experiment = 'forecast' or domain = 'production'", ['metrics.acc DESC']],
];

async function denials(name: string): Promise<{ action: string; subject: string }[]> {
  const { auditEvents } = await t.api.gql(`{ auditEvents(limit: 1000) { action decision subject identity { name } } }`);
  return auditEvents.filter((e: any) => e.decision === 'deny' && e.identity?.name === name);
}

beforeAll(async () => {
  t = await startTestApp();
  alice = await t.user('alice');
  bob = await t.user('bob');
  vera = await t.user('vera', 'viewer');
  await t.team('ml', ['alice']);
  await t.team('web', ['bob']);
  await t.api.gql(`mutation { grantDomain(team: "ml", domain: production) { id } }`);
  const db = t.app.services.db;
  lab1 = await seedRun(db, { experiment: 'forecast', parameters: { lr: 0.1 }, tags: { dataset: 'v1' }, tasks: [[['acc', 0.5]]] });
  lab2 = await seedRun(db, { experiment: 'forecast', parameters: { lr: 0.01 }, tasks: [[['acc', 0.6]]] });
  // Sorts first by acc, between the others by time, matches every probe: if it leaked, every probe would show it.
  prod = await seedRun(db, { experiment: 'forecast', domain: 'production', parameters: { lr: 0.5 }, tags: { secret: 'yes' }, tasks: [[['acc', 0.999]]] });
}, 60_000);

afterAll(() => t?.stop());

describe('searchRuns', () => {
  it('finds the production run for a granted member only', async () => {
    const ids = async (c: ApiClient) => (await c.gql(SEARCH, { f: 'metrics.acc > 0.9', first: 10 })).searchRuns.edges.map((e: any) => e.node.id);
    expect(await ids(alice)).toEqual([prod]);
    expect(await ids(bob)).toEqual([]);
    expect(await ids(vera)).toEqual([]);
  });

  it('answers who may not read it exactly as if it did not exist: same runs, order, pages and cursors', async () => {
    const seen = async () => {
      const answers: unknown[] = [];
      for (const [f, o] of probes) answers.push(await walk(bob, f, o), await walk(vera, f, o));
      return answers;
    };
    const withRun = await seen();
    const db = t.app.services.db;
    await db.update(runs).set({ deletedAt: new Date() }).where(eq(runs.id, prod));
    try {
      expect(withRun).toEqual(await seen());
    } finally {
      await db.update(runs).set({ deletedAt: null }).where(eq(runs.id, prod));
    }
    // A name only the run they may not read has is unknown to them, and the names suggested are not its own.
    const typo = await bob.raw(SEARCH, { f: "tags.secre = 'yes'", first: 1 });
    expect(typo.errors?.[0]?.extensions?.code).toBe('UNKNOWN_TAG');
    expect(typo.errors?.[0]?.message).not.toContain('secret');
    expect(code(await alice.raw(SEARCH, { f: "tags.secret = 'yes'", first: 1 }))).toBeUndefined();
    expect((await alice.raw(SEARCH, { f: "tags.secre = 'yes'", first: 1 })).errors?.[0]?.message).toContain('Did you mean "secret"?');
    // And the probes do reach it for whom it is readable.
    expect(JSON.stringify(await walk(alice, 'metrics.acc > 0.9'))).toContain(prod);
  });
});

describe('compareRuns', () => {
  it('lists the production run as missing, like an unknown id, and shows nothing of it', async () => {
    const unknown = randomUUID();
    const mine = (await bob.gql(COMPARE, { ids: [lab1, prod, lab2] })).compareRuns;
    const none = (await bob.gql(COMPARE, { ids: [lab1, unknown, lab2] })).compareRuns;
    expect(mine.runs).toEqual(none.runs);
    expect(mine.missing).toEqual([prod]);
    expect(none.missing).toEqual([unknown]);
    expect({ ...mine, missing: [] }).toEqual({ ...none, missing: [] });
    expect(JSON.stringify(mine)).not.toContain('0.5"');
    const viewer = (await vera.gql(COMPARE, { ids: [prod] })).compareRuns;
    expect(viewer).toEqual({ runs: [], missing: [prod], params: [], metrics: [], series: [] });
    const granted = (await alice.gql(COMPARE, { ids: [prod] })).compareRuns;
    expect(granted.params).toEqual([{ key: 'lr', values: ['0.5'] }]);
  });
});

describe('tags and notes', () => {
  it('refuses tagging or noting a run outside the caller’s grants, audits it, and writes nothing', async () => {
    for (const [who, client, runId] of [
      ['bob', bob, prod],
      ['vera', vera, lab1],
    ] as const) {
      const before = (await denials(who)).length;
      const tag = await client.raw(`mutation ($id: ID!) { setRunTags(runId: $id, tags: [{ key: "secret", value: "no" }]) { id } }`, { id: runId });
      const untag = await client.raw(`mutation ($id: ID!) { deleteRunTag(runId: $id, key: "secret") { id } }`, { id: runId });
      const note = await client.raw(`mutation ($id: ID!) { setRunNote(runId: $id, note: "mine now") { id } }`, { id: runId });
      expect([code(tag), code(untag), code(note)], who).toEqual(['FORBIDDEN', 'FORBIDDEN', 'FORBIDDEN']);
      const recorded = (await denials(who)).slice(before);
      expect(recorded.map((d) => d.action).sort()).toEqual(['run.note', 'run.tag', 'run.tag']);
      expect(recorded.every((d) => d.subject === `run:${runId}`)).toBe(true);
    }
    const { run } = await alice.gql(`query ($id: ID!) { run(id: $id) { tags { key value } note } }`, { id: prod });
    expect(run).toEqual({ tags: [{ key: 'secret', value: 'yes' }], note: null });
  });

  it('keeps a production run’s tags and note from who may not read its data', async () => {
    await alice.gql(`mutation ($id: ID!) { setRunNote(runId: $id, note: "do not ship") { id } }`, { id: prod });
    const read = await bob.raw(`query ($id: ID!) { run(id: $id) { id tags { key } note noteBy { name } } }`, { id: prod });
    expect(read.data?.run).toMatchObject({ id: prod, tags: null, note: null, noteBy: null });
    expect(read.errors?.every((e) => e.extensions?.code === 'FORBIDDEN')).toBe(true);
  });
});
