// Publishing datasets to the interactive catalog through the real API: refused while a column is UNCLASSIFIED
// or beyond the ceiling (naming each), withdrawn when a label is raised or lineage puts a column outside it,
// namespace writers only, every decision audited; and the ceiling's configuration.
import { eq } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../../server/config';
import { datasets } from '../../server/db/tables/governance';
import { recordComputedLabels } from '../../server/governance/datasets';
import { startTestApp, type TestApp } from '../harness/app';
import type { ApiClient } from '../harness/client';

let t: TestApp;
let alice: ApiClient;
let eve: ApiClient;
const codeOf = (r: any) => r.errors?.[0]?.extensions?.code;
const msgOf = (r: any) => r.errors?.[0]?.message ?? '';
const PUBLISH = `mutation ($n: String!) { publishDatasetToCatalog(name: $n) { catalog { published publishedAt publishedBy { name } blockers } } }`;
const WITHDRAW = `mutation ($n: String!, $r: String) { withdrawDatasetFromCatalog(name: $n, reason: $r) { catalog { published } } }`;
const STATE = `query ($n: String!) { dataset(name: $n) { catalog { published publishedBy { name } blockers } } }`;

async function create(name: string, columns: { name: string; label?: { level: string; categories?: string[] } }[]) {
  await alice.gql(
    `mutation ($n: String!, $c: [DatasetColumnInput!]!) { createDataset(name: $n, domain: adhoc, columns: $c, digest: "sha256:${'c'.repeat(64)}") { id } }`,
    {
      n: name,
      c: columns.map((c) => ({ type: 'string', ...c })),
    },
  );
}
const audits = async (subject: string) =>
  (await t.api.gql(`query ($s: String!) { auditEvents(subject: $s, limit: 100) { action decision rule details identity { name } } }`, { s: subject }))
    .auditEvents;

beforeAll(async () => {
  t = await startTestApp();
  [alice, eve] = await Promise.all([t.user('alice'), t.user('eve')]);
  await t.team('crm', ['alice'], ['crm']);
  await create('crm/events', [{ name: 'id', label: { level: 'PUBLIC' } }, { name: 'country', label: { level: 'INTERNAL' } }, { name: 'note' }]);
});
afterAll(async () => {
  await t?.stop();
});

describe('publishing datasets to the interactive catalog', () => {
  it('refuses a dataset with an UNCLASSIFIED column, naming it and what to do, and shows it as a blocker', async () => {
    const r = await alice.raw(PUBLISH, { n: 'crm/events' });
    expect(codeOf(r)).toBe('FORBIDDEN');
    expect(msgOf(r)).toBe(
      'crm/events cannot be published to the interactive catalog, which shows only classified columns at most CONFIDENTIAL, never PII: note (UNCLASSIFIED): UNCLASSIFIED; classify it with setColumnLabel.',
    );
    expect((await eve.gql(STATE, { n: 'crm/events' })).dataset.catalog).toEqual({
      published: false,
      publishedBy: null,
      blockers: ['note (UNCLASSIFIED): UNCLASSIFIED; classify it with setColumnLabel'],
    });
  });

  it('refuses columns above the ceiling or in a denied category, naming every one', async () => {
    await create('crm/people', [
      { name: 'id', label: { level: 'PUBLIC' } },
      { name: 'ssn', label: { level: 'RESTRICTED' } },
      { name: 'email', label: { level: 'INTERNAL', categories: ['PII'] } },
    ]);
    const r = await alice.raw(PUBLISH, { n: 'crm/people' });
    expect(codeOf(r)).toBe('FORBIDDEN');
    expect(msgOf(r)).toMatch(/ssn \(RESTRICTED\): RESTRICTED is above the catalog ceiling CONFIDENTIAL; declassify it/);
    expect(msgOf(r)).toMatch(/email \(INTERNAL\{PII\}\): PII is never shown in the catalog/);
    expect(msgOf(r)).not.toMatch(/\bid \(/);
  });

  it('publishes once every column is classified within the ceiling; namespace writers only', async () => {
    await alice.gql(`mutation { setColumnLabel(dataset: "crm/events", column: "note", label: { level: CONFIDENTIAL, categories: ["UGC"] }) { level } }`);
    const denied = await eve.raw(PUBLISH, { n: 'crm/events' });
    expect(codeOf(denied)).toBe('FORBIDDEN');
    expect(msgOf(denied)).toMatch(/team "crm"/);
    const { publishDatasetToCatalog } = await alice.gql(PUBLISH, { n: 'crm/events' });
    expect(publishDatasetToCatalog.catalog).toMatchObject({ published: true, publishedBy: { name: 'alice' }, blockers: [] });
    expect(new Date(publishDatasetToCatalog.catalog.publishedAt).getTime()).toBeGreaterThan(Date.now() - 60_000);
    const names = async (catalog: boolean) =>
      (await eve.gql(`query ($c: Boolean) { datasets(catalog: $c) { fullName } }`, { c: catalog })).datasets.map((d: any) => d.fullName);
    expect(await names(true)).toEqual(['crm/events']);
    expect(await names(false)).toEqual(['crm/people']);
  });

  it('withdraws automatically when a label is raised above the ceiling, audited with the ceiling', async () => {
    await alice.gql(`mutation { setColumnLabel(dataset: "crm/events", column: "country", label: { level: RESTRICTED }) { level } }`);
    expect((await eve.gql(STATE, { n: 'crm/events' })).dataset.catalog).toEqual({
      published: false,
      publishedBy: null,
      blockers: [
        'country (RESTRICTED): RESTRICTED is above the catalog ceiling CONFIDENTIAL; declassify it (requestDeclassification) or leave the dataset out',
      ],
    });
    const [withdrawal] = (await audits('dataset:crm/events')).filter((e: any) => e.action === 'catalog.withdraw');
    expect(withdrawal).toMatchObject({
      decision: 'allow',
      identity: { name: 'alice' },
      rule: 'withdrawn automatically: the interactive catalog shows only classified columns at most CONFIDENTIAL, never PII',
    });
    expect(withdrawal.details.cause).toBe('country labelled RESTRICTED');
  });

  it('withdraws automatically when lineage raises a label or a new version brings an unclassified column', async () => {
    await create('crm/derived', [{ name: 'a', label: { level: 'PUBLIC' } }]);
    await alice.gql(PUBLISH, { n: 'crm/derived' });
    const [ds] = await t.app.services.db.select().from(datasets).where(eq(datasets.name, 'derived'));
    // a computed label within the ceiling leaves it published
    await t.app.services.db.transaction((tx) =>
      recordComputedLabels(tx, ds!.id, new Map([['a', { level: 'INTERNAL', categories: [] }]]), t.app.services.config.catalogCeiling),
    );
    expect((await eve.gql(STATE, { n: 'crm/derived' })).dataset.catalog.published).toBe(true);
    await t.app.services.db.transaction((tx) =>
      recordComputedLabels(tx, ds!.id, new Map([['a', { level: 'UNCLASSIFIED', categories: [] }]]), t.app.services.config.catalogCeiling),
    );
    expect((await eve.gql(STATE, { n: 'crm/derived' })).dataset.catalog).toMatchObject({
      published: false,
      blockers: ['a (UNCLASSIFIED): UNCLASSIFIED; classify it with setColumnLabel'],
    });
    const [withdrawal] = (await audits('dataset:crm/derived')).filter((e: any) => e.action === 'catalog.withdraw');
    expect(withdrawal).toMatchObject({ decision: 'allow', identity: null });
    expect(withdrawal.details.cause).toMatch(/lineage/);
  });

  it('withdraws by hand (namespace writers only), and audits every decision both ways', async () => {
    await create('crm/plain', [{ name: 'a', label: { level: 'PUBLIC' } }]);
    await alice.gql(PUBLISH, { n: 'crm/plain' });
    expect(codeOf(await eve.raw(WITHDRAW, { n: 'crm/plain' }))).toBe('FORBIDDEN');
    expect((await alice.gql(WITHDRAW, { n: 'crm/plain', r: 'superseded' })).withdrawDatasetFromCatalog.catalog.published).toBe(false);
    const seen = (await audits('dataset:crm/plain')).map((e: any) => `${e.identity?.name}:${e.action}:${e.decision}`);
    expect(seen).toEqual(['alice:catalog.withdraw:allow', 'eve:catalog.withdraw:deny', 'alice:catalog.publish:allow', 'alice:dataset.create:allow']);
    const events = (await audits('dataset:crm/events')).map((e: any) => `${e.identity?.name}:${e.action}:${e.decision}`);
    expect(events).toEqual(expect.arrayContaining(['alice:catalog.publish:deny', 'eve:catalog.publish:deny', 'alice:catalog.publish:allow']));
    const [refusal] = (await audits('dataset:crm/people')).filter((e: any) => e.action === 'catalog.publish');
    expect(refusal.details.blockers).toHaveLength(2);
  });

  it('an unknown dataset is NOT_FOUND, a name without a namespace BAD_USER_INPUT', async () => {
    expect(codeOf(await alice.raw(PUBLISH, { n: 'crm/none' }))).toBe('NOT_FOUND');
    expect(codeOf(await alice.raw(WITHDRAW, { n: 'crm/none' }))).toBe('NOT_FOUND');
    expect(codeOf(await alice.raw(PUBLISH, { n: 'events' }))).toBe('BAD_USER_INPUT');
  });
});

describe('the catalog ceiling configuration', () => {
  it('defaults to CONFIDENTIAL without PII, and reads both variables', () => {
    expect(loadConfig({}).catalogCeiling).toEqual({ level: 'CONFIDENTIAL', deniedCategories: ['PII'] });
    expect(loadConfig({ ATELIER_CATALOG_CEILING: 'internal', ATELIER_CATALOG_DENY_CATEGORIES: 'pii, ugc' }).catalogCeiling).toEqual({
      level: 'INTERNAL',
      deniedCategories: ['PII', 'UGC'],
    });
    expect(loadConfig({ ATELIER_CATALOG_DENY_CATEGORIES: 'none' }).catalogCeiling.deniedCategories).toEqual([]);
  });

  it('refuses bad values with a message that says what is expected', () => {
    expect(() => loadConfig({ ATELIER_CATALOG_CEILING: 'SECRET' })).toThrow(ConfigError);
    expect(() => loadConfig({ ATELIER_CATALOG_CEILING: 'SECRET' })).toThrow(
      'ATELIER_CATALOG_CEILING must be one of PUBLIC, INTERNAL, CONFIDENTIAL, RESTRICTED: the highest level the interactive catalog may show (got "SECRET").',
    );
    expect(() => loadConfig({ ATELIER_CATALOG_DENY_CATEGORIES: 'PII,not a word' })).toThrow(
      /ATELIER_CATALOG_DENY_CATEGORIES is a comma-separated list of categories such as PII,UGC \(or "none"\); "NOT A WORD" is not one/,
    );
  });
});
