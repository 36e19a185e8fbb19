// searchRuns over GraphQL: the filter language's every operator and field, its errors (with the column and what was
// expected), ordering by metrics and params with missing values last, keyset pages that are stable under ties,
// unknown names refused with a did-you-mean, and deleted runs left out.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestApp, type TestApp } from '../harness/app';
import type { GqlResult } from '../harness/client';
import { seedRun } from './seed';

let t: TestApp;
const ids: Record<string, string> = {};
const SEARCH = `query ($f: String, $o: [String!], $first: Int, $after: String, $last: Int, $before: String) {
  searchRuns(filter: $f, orderBy: $o, first: $first, after: $after, last: $last, before: $before) {
    edges { cursor node { id name } } pageInfo { hasNextPage hasPreviousPage endCursor startCursor } } }`;

const raw = (f: string, o?: string[], page: object = {}): Promise<GqlResult> => t.api.raw(SEARCH, { f, o, first: 50, ...page });
async function names(f: string, o?: string[]): Promise<string[]> {
  const result = await raw(f, o);
  if (result.errors) throw new Error(JSON.stringify(result.errors));
  return result.data.searchRuns.edges.map((e: any) => e.node.name);
}
const sorted = async (f: string) => (await names(f)).sort();

beforeAll(async () => {
  t = await startTestApp();
  const db = t.app.services.db;
  const day = (d: number) => new Date(`2026-01-0${d}T00:00:00Z`);
  // r0 has two tasks: loss last is the later task's last (0.6), min over both (0.2), max over both (1.0).
  ids.r0 = await seedRun(db, {
    name: 'r0',
    experiment: 'exp-a',
    createdAt: day(1),
    parameters: { lr: 0.1, opt: 'adam' },
    tags: { dataset: 'v1' },
    tasks: [
      [
        ['acc', 0.9],
        ['loss', 1.0],
        ['loss', 0.5],
      ],
      [
        ['loss', 0.2],
        ['loss', 0.6],
      ],
    ],
  });
  ids.r1 = await seedRun(db, {
    name: 'r1',
    experiment: 'exp-a',
    createdAt: day(2),
    status: 'FAILED',
    parameters: { lr: 0.01, opt: 'sgd' },
    tags: { dataset: 'v2' },
    tasks: [[['acc', 0.95]]],
  });
  ids.r2 = await seedRun(db, {
    name: 'r2',
    experiment: 'exp-a',
    createdAt: day(3),
    parameters: { lr: '1e-3' },
    tags: { dataset: 'v2' },
    tasks: [[['acc', 0.97]]],
  });
  ids.r3 = await seedRun(db, {
    name: 'r3',
    experiment: 'exp-b',
    createdAt: day(4),
    logged: { lr: '0.05' },
    tags: { dataset: 'V2-large' },
    tasks: [[['acc', 0.95]]],
  });
  ids.r4 = await seedRun(db, { name: 'r4', experiment: 'exp-b', createdAt: day(5), parameters: { lr: 'high' }, tasks: [[['acc', Number.NaN]]] });
  ids.r5 = await seedRun(db, { name: 'r5', experiment: 'exp-b', createdAt: day(6) });
  ids.gone = await seedRun(db, { name: 'gone', experiment: 'exp-a', createdAt: day(7), tasks: [[['acc', 0.99]]], deleted: true });
}, 60_000);

afterAll(() => t?.stop());

describe('the filter language', () => {
  it('compares metrics with every operator (last by default; NaN matches nothing)', async () => {
    expect(await sorted('metrics.acc > 0.95')).toEqual(['r2']);
    expect(await sorted('metrics.acc >= 0.95')).toEqual(['r1', 'r2', 'r3']);
    expect(await sorted('metrics.acc = 0.95')).toEqual(['r1', 'r3']);
    expect(await sorted('metrics.acc != 0.95')).toEqual(['r0', 'r2']);
    expect(await sorted('metrics.acc < 0.95')).toEqual(['r0']);
    expect(await sorted('metrics.acc <= 0.95')).toEqual(['r0', 'r1', 'r3']);
    expect(await sorted('metrics.acc IN (0.9, 0.97)')).toEqual(['r0', 'r2']);
    expect(await sorted('metrics.acc not in (0.9, 0.97)')).toEqual(['r1', 'r3']);
  });

  it('summarises a metric over a run’s tasks: last reported, least min, greatest max', async () => {
    expect(await names('metrics.loss = 0.6')).toEqual(['r0']);
    expect(await names('metrics.loss.last = 0.6 and metrics.loss.min = 0.2 and metrics.loss.max = 1')).toEqual(['r0']);
    expect(await names('metrics.loss.min > 0.2')).toEqual([]);
  });

  it('compares params as numbers against numbers and as text against text, declared or logged', async () => {
    expect(await sorted('params.lr <= 0.05')).toEqual(['r1', 'r2', 'r3']);
    expect(await sorted('params.lr > 0.05')).toEqual(['r0']);
    expect(await sorted("params.lr = 'high'")).toEqual(['r4']);
    expect(await sorted("params.opt IN ('adam', 'sgd')")).toEqual(['r0', 'r1']);
    expect(await sorted("params.opt LIKE 'a%'")).toEqual(['r0']);
  });

  it('matches tags, LIKE, ILIKE and NOT LIKE, and joins with and, or and parentheses', async () => {
    expect(await sorted("tags.dataset = 'v2'")).toEqual(['r1', 'r2']);
    expect(await sorted("tags.dataset LIKE 'v2%'")).toEqual(['r1', 'r2']);
    expect(await sorted("tags.dataset ILIKE 'v2%'")).toEqual(['r1', 'r2', 'r3']);
    expect(await sorted("tags.dataset NOT LIKE 'v2%'")).toEqual(['r0', 'r3']);
    expect(await sorted("metrics.acc > 0.95 or tags.dataset = 'v1'")).toEqual(['r0', 'r2']);
    expect(await sorted("(metrics.acc > 0.95 or tags.dataset = 'v1') and params.opt = 'adam'")).toEqual(['r0']);
    expect(await sorted("metrics.acc > 0.95 or tags.dataset = 'v1' and params.opt = 'sgd'")).toEqual(['r2']);
    // The issue's own example.
    expect(await sorted("metrics.acc > 0.9 and params.lr <= 0.1 and tags.dataset = 'v2'")).toEqual(['r1', 'r2']);
  });

  it('filters on status, experiment, trigger, name and time', async () => {
    expect(await sorted("status = 'FAILED'")).toEqual(['r1']);
    expect(await sorted("experiment = 'exp-b'")).toEqual(['r3', 'r4', 'r5']);
    expect(await sorted("trigger = 'EXTERNAL' and created >= '2026-01-05'")).toEqual(['r4', 'r5']);
    expect(await sorted("created < '2026-01-02T00:00:00Z'")).toEqual(['r0']);
    expect(await sorted("name IN ('r1', 'r9')")).toEqual(['r1']);
    expect(await sorted("workflow = 'none'")).toEqual([]);
  });

  it('refuses a metric, param or tag no run has with a typed error naming the nearest names; deleted runs never appear', async () => {
    const refusal = async (f: string, o?: string[]) => {
      const result = await raw(f, o);
      expect(result.data?.searchRuns ?? null, f).toBeNull();
      return { code: result.errors?.[0]?.extensions?.code, message: result.errors?.[0]?.message ?? '' };
    };
    const metric = await refusal('metrics.accc > 0');
    expect(metric.code).toBe('UNKNOWN_METRIC');
    expect(metric.message).toContain('No run you may read has metric "accc" (filter, column 1)');
    expect(metric.message).toContain('Did you mean "acc"?');
    expect(metric.message).toContain('"acc", "loss"');
    const param = await refusal("metrics.acc > 0 and params.learning_rate = 'x'");
    expect(param).toMatchObject({ code: 'UNKNOWN_PARAM' });
    expect(param.message).toContain('column 21');
    expect(param.message).toMatch(/"lr"|"opt"/);
    // In a branch of an `or` that other branches satisfy, and in an order, it is as much a typo.
    expect((await refusal("tags.dataset = 'v1' or tags.datset = 'v2'")).message).toContain('Did you mean "dataset"?');
    expect(await refusal("tags.dataset = 'v1' or tags.datset = 'v2'")).toMatchObject({ code: 'UNKNOWN_TAG' });
    expect(await refusal('', ['metrics.los DESC'])).toMatchObject({ code: 'UNKNOWN_METRIC', message: expect.stringContaining('orderBy[0]') });
    // A name only a deleted run has is unknown too.
    const db = t.app.services.db;
    await seedRun(db, { name: 'gone2', experiment: 'exp-a', tasks: [[['only_gone', 1]]], deleted: true });
    expect(await refusal('metrics.only_gone > 0')).toMatchObject({ code: 'UNKNOWN_METRIC' });
    // Names some run has match what they match, also when no run matches the value.
    expect(await names('metrics.acc > 0.98')).toEqual([]);
    expect(await names("params.opt = 'x'")).toEqual([]);
    expect(await names('')).not.toContain('gone');
  });

  it('names the column and what was expected in a malformed filter, and the field or type that is wrong', async () => {
    const cases: [string, RegExp][] = [
      ['metrics.acc >', /column 14: expected a number or a 'string', found the end of the filter/],
      ['metrics.acc > 1 and (', /column 22: expected '\(' or a name/],
      ['metrics.acc ? 1', /column 13: unexpected character '\?'/],
      ['metrics.acc 1', /column 13: expected a comparison/],
      ["(status = 'FAILED'", /column 19: expected '\)'/],
      ["status = 'FAILED' tags.x = 'a'", /column 19: expected AND, OR or the end of the filter/],
      ['foo = 1', /column 1: unknown field 'foo'/],
      ["metrics.acc = 'high'", /column 1: metrics.acc.last is a number/],
      ["x = 1 and metrics.acc like 'a'", /column 1: unknown field/],
      ["created > 'yesterday'", /'yesterday' is not an ISO time/],
      ['tags.x = 1', /tags are text/],
    ];
    for (const [filter, message] of cases) {
      const result = await raw(filter);
      expect(result.errors?.[0]?.extensions?.code, filter).toBe('BAD_USER_INPUT');
      expect(result.errors?.[0]?.message, filter).toMatch(message);
    }
    const order = await raw('', ['metrics.acc DOWN']);
    expect(order.errors?.[0]?.message).toMatch(/orderBy.0 column 13: expected ASC, DESC or the end/);
  });
});

describe('ordering and pages', () => {
  it('orders by a metric, then by id on ties, with missing values (and NaN) last either way', async () => {
    const desc = await names('', ['metrics.acc DESC']);
    expect(desc.slice(0, 2)).toEqual(['r2', desc[1]]);
    expect(desc.slice(1, 3).sort()).toEqual(['r1', 'r3']);
    expect(desc.slice(3, 4)).toEqual(['r0']);
    expect(desc.slice(4).sort()).toEqual(['r4', 'r5']);
    const asc = await names('', ['metrics.acc']);
    expect(asc[0]).toBe('r0');
    expect(asc.slice(4).sort()).toEqual(['r4', 'r5']);
    expect(await names('', ['created DESC'])).toEqual(['r5', 'r4', 'r3', 'r2', 'r1', 'r0']);
    expect(await names('params.lr != 0', ['params.lr ASC'])).toEqual(['r2', 'r1', 'r3', 'r0']);
    expect(await names('', ['params.opt DESC', 'created ASC'])).toEqual(['r1', 'r0', 'r2', 'r3', 'r4', 'r5']);
  });

  it('pages forward and backward through a metric order with ties, each run once, in the same order', async () => {
    const all = await names('', ['metrics.acc DESC']);
    const forward: string[] = [];
    let after: string | undefined;
    for (;;) {
      const page = (await raw('', ['metrics.acc DESC'], { first: 2, after })).data.searchRuns;
      forward.push(...page.edges.map((e: any) => e.node.name));
      if (!page.pageInfo.hasNextPage) break;
      after = page.pageInfo.endCursor;
    }
    expect(forward).toEqual(all);
    const backward: string[] = [];
    let before: string | undefined;
    for (;;) {
      const page = (await raw('', ['metrics.acc DESC'], { first: undefined, last: 2, before })).data.searchRuns;
      backward.unshift(...page.edges.map((e: any) => e.node.name));
      if (!page.pageInfo.hasPreviousPage) break;
      before = page.pageInfo.startCursor;
    }
    expect(backward).toEqual(all);
  });

  it('refuses a cursor of another order', async () => {
    const page = (await raw('', ['metrics.acc DESC'], { first: 1 })).data.searchRuns;
    const other = await raw('', ['params.lr'], { first: 1, after: page.pageInfo.endCursor });
    expect(other.errors?.[0]?.extensions?.code).toBe('BAD_USER_INPUT');
  });
});
