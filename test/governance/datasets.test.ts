// Datasets and classification through the real API: labels only go up, never below the computed one;
// lowering is a declassification someone else approves; every decision and grant change is audited, and
// only admins read the audit log.

import { and, eq } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { columnLabels, datasets } from '../../server/db/tables/governance';
import { recordComputedLabels } from '../../server/governance/datasets';
import { startTestApp, type TestApp } from '../harness/app';
import { type ApiClient, apiClient } from '../harness/client';

let t: TestApp;
let alice: ApiClient;
let bob: ApiClient;
let eve: ApiClient;
const DIGEST = `sha256:${'a'.repeat(64)}`;
const codeOf = (r: any) => r.errors?.[0]?.extensions?.code;
const msgOf = (r: any) => r.errors?.[0]?.message ?? '';

const SET = `mutation ($c: String!, $l: ClassificationLabelInput!) { setColumnLabel(dataset: "crm/users", column: $c, label: $l) { level categories } }`;
const COLUMNS = `{ dataset(name: "crm/users") { domain columns { name label { level categories } computedLabel { level } needsClassification } } }`;

async function user(name: string): Promise<ApiClient> {
  const { createUser } = await t.api.gql(`mutation ($n: String!) { createUser(name: $n) { token } }`, { n: name });
  return apiClient(t.url, createUser.token);
}

beforeAll(async () => {
  t = await startTestApp();
  [alice, bob, eve] = await Promise.all([user('alice'), user('bob'), user('eve')]);
  await t.api.gql(`mutation { createTeam(name: "crm") { id } }`);
  await t.api.gql(`mutation { setTeamMember(team: "crm", identity: "alice") { id } }`);
  await t.api.gql(`mutation { setTeamMember(team: "crm", identity: "bob") { id } }`);
  await t.api.gql(`mutation { assignNamespace(namespace: "crm", team: "crm") { id } }`);
});
afterAll(async () => {
  await t?.stop();
});

describe('datasets and column labels', () => {
  it('creates a dataset with some columns classified and the rest flagged UNCLASSIFIED', async () => {
    const columns = [
      { name: 'id', type: 'string', label: { level: 'INTERNAL' } },
      { name: 'email', type: 'string', label: { level: 'RESTRICTED', categories: ['pii'] } },
      { name: 'country', type: 'string' },
    ];
    expect(
      codeOf(
        await eve.raw(
          `mutation ($c: [DatasetColumnInput!]!) { createDataset(name: "crm/users", domain: production, columns: $c, digest: "${DIGEST}") { id } }`,
          { c: columns },
        ),
      ),
    ).toBe('FORBIDDEN');
    await alice.gql(`mutation ($c: [DatasetColumnInput!]!) { createDataset(name: "crm/users", domain: production, columns: $c, digest: "${DIGEST}") { id } }`, {
      c: columns,
    });
    const { dataset } = await eve.gql(COLUMNS);
    expect(dataset.domain).toBe('production');
    expect(dataset.columns).toEqual([
      { name: 'id', label: { level: 'INTERNAL', categories: [] }, computedLabel: null, needsClassification: false },
      { name: 'email', label: { level: 'RESTRICTED', categories: ['PII'] }, computedLabel: null, needsClassification: false },
      { name: 'country', label: { level: 'UNCLASSIFIED', categories: [] }, computedLabel: null, needsClassification: true },
    ]);
  });

  it('refuses bad names, domains, columns, digests and labels with typed errors', async () => {
    const create = (name: string, columns: unknown[], digest = DIGEST) =>
      alice.raw(`mutation ($n: String!, $c: [DatasetColumnInput!]!, $d: String!) { createDataset(name: $n, domain: adhoc, columns: $c, digest: $d) { id } }`, {
        n: name,
        c: columns,
        d: digest,
      });
    expect(codeOf(await create('crm/users', [{ name: 'a', type: 'int' }]))).toBe('CONFLICT');
    expect(codeOf(await create('CRM Users', [{ name: 'a', type: 'int' }]))).toBe('BAD_USER_INPUT');
    expect(
      codeOf(
        await create('crm/dup', [
          { name: 'a', type: 'int' },
          { name: 'a', type: 'int' },
        ]),
      ),
    ).toBe('BAD_USER_INPUT');
    expect(codeOf(await create('crm/nodigest', [{ name: 'a', type: 'int' }], 'latest'))).toBe('BAD_USER_INPUT');
    expect(codeOf(await alice.raw(SET, { c: 'country', l: { level: 'INTERNAL', categories: ['not a word'] } }))).toBe('BAD_USER_INPUT');
    expect(codeOf(await alice.raw(SET, { c: 'nope', l: { level: 'INTERNAL' } }))).toBe('NOT_FOUND');
  });

  it('refuses a malformed sample and bad preview requests with typed errors', async () => {
    const create = (sample: unknown) =>
      alice.raw(
        `mutation ($s: JSON) { createDataset(name: "crm/sampled", domain: adhoc, columns: [{ name: "a", type: "int" }], digest: "${DIGEST}", sample: $s) { id } }`,
        { s: sample },
      );
    expect(msgOf(await create([{ a: 1 }, { b: 2 }]))).toMatch(/sample.1 must be an object whose keys are the dataset's columns/);
    expect(codeOf(await create('rows'))).toBe('BAD_USER_INPUT');
    expect(codeOf(await create(Array.from({ length: 1001 }, () => ({ a: 1 }))))).toBe('BAD_USER_INPUT');
    const preview = (args: string) => eve.raw(`{ datasetPreview(${args}) { columns } }`);
    expect(msgOf(await preview('name: "crm/users", columns: ["nope"]'))).toMatch(/crm\/users has no column nope/);
    expect(codeOf(await preview('name: "crm/users", orderBy: { column: "ghost" }'))).toBe('BAD_USER_INPUT');
    expect(codeOf(await preview('name: "users"'))).toBe('BAD_USER_INPUT');
    expect(codeOf(await preview('name: "crm/none"'))).toBe('NOT_FOUND');
  });

  it('classifies and raises labels, but never lowers one without a declassification', async () => {
    expect((await alice.gql(SET, { c: 'country', l: { level: 'INTERNAL' } })).setColumnLabel).toEqual({ level: 'INTERNAL', categories: [] });
    expect((await alice.gql(SET, { c: 'country', l: { level: 'CONFIDENTIAL', categories: ['CUSTOMER_DATA'] } })).setColumnLabel.level).toBe('CONFIDENTIAL');
    const down = await alice.raw(SET, { c: 'country', l: { level: 'PUBLIC' } });
    expect(codeOf(down)).toBe('FORBIDDEN');
    expect(msgOf(down)).toMatch(/declassification/);
    // dropping a category is lowering too
    expect(codeOf(await alice.raw(SET, { c: 'country', l: { level: 'RESTRICTED' } }))).toBe('FORBIDDEN');
    expect(codeOf(await eve.raw(SET, { c: 'country', l: { level: 'RESTRICTED', categories: ['CUSTOMER_DATA'] } }))).toBe('FORBIDDEN');
  });

  it('declassifies only with an approver who is not the author', async () => {
    const ask = await alice.gql(
      `mutation { requestDeclassification(dataset: "crm/users", column: "country", label: { level: INTERNAL }, reason: "country codes are public knowledge") { id state } }`,
    );
    expect(ask.requestDeclassification.state).toBe('PENDING');
    const id = ask.requestDeclassification.id;
    const self = await alice.raw(`mutation ($id: ID!) { decideDeclassification(id: $id, approve: true) { state } }`, { id });
    expect(codeOf(self)).toBe('FORBIDDEN');
    expect(msgOf(self)).toMatch(/someone else/);
    expect(codeOf(await eve.raw(`mutation ($id: ID!) { decideDeclassification(id: $id, approve: true) { state } }`, { id }))).toBe('FORBIDDEN');
    expect((await eve.gql(COLUMNS)).dataset.columns[2].label.level).toBe('CONFIDENTIAL');
    const approved = await bob.gql(`mutation ($id: ID!) { decideDeclassification(id: $id, approve: true) { state decidedBy { name } } }`, { id });
    expect(approved.decideDeclassification).toEqual({ state: 'APPROVED', decidedBy: { name: 'bob' } });
    expect((await eve.gql(COLUMNS)).dataset.columns[2].label).toEqual({ level: 'INTERNAL', categories: [] });
    expect(codeOf(await bob.raw(`mutation ($id: ID!) { decideDeclassification(id: $id, approve: true) { state } }`, { id }))).toBe('CONFLICT');
  });

  it('keeps a label at or above what lineage computed; recomputation only raises', async () => {
    const [ds] = await t.app.services.db.select().from(datasets).where(eq(datasets.name, 'users'));
    await t.app.services.db.transaction((tx) =>
      recordComputedLabels(tx, ds!.id, new Map([['id', { level: 'CONFIDENTIAL', categories: ['PII'] }]]), t.app.services.config.catalogCeiling),
    );
    let cols = (await eve.gql(COLUMNS)).dataset.columns;
    expect(cols[0]).toMatchObject({ label: { level: 'CONFIDENTIAL', categories: ['PII'] }, computedLabel: { level: 'CONFIDENTIAL' } });
    const below = await alice.raw(
      `mutation { requestDeclassification(dataset: "crm/users", column: "id", label: { level: INTERNAL, categories: ["PII"] }, reason: "x") { id } }`,
    );
    expect(codeOf(below)).toBe('FORBIDDEN');
    expect(msgOf(below)).toMatch(/lineage computed/);
    // an upstream lowered: the computed label drops, the effective one stays where it was
    await t.app.services.db.transaction((tx) =>
      recordComputedLabels(tx, ds!.id, new Map([['id', { level: 'INTERNAL', categories: [] }]]), t.app.services.config.catalogCeiling),
    );
    cols = (await eve.gql(COLUMNS)).dataset.columns;
    expect(cols[0]).toMatchObject({ label: { level: 'CONFIDENTIAL', categories: ['PII'] }, computedLabel: { level: 'INTERNAL' } });
    const [row] = await t.app.services.db
      .select()
      .from(columnLabels)
      .where(and(eq(columnLabels.datasetId, ds!.id), eq(columnLabels.column, 'id')));
    expect(row?.level).toBe('CONFIDENTIAL');
  });

  it('adds versions: kept columns keep their labels, new ones start UNCLASSIFIED, a published dataset with a new unclassified column is withdrawn', async () => {
    const ADD = `mutation ($n: String!, $c: [DatasetColumnInput!]!, $d: String!) { addDatasetVersion(name: $n, columns: $c, digest: $d) { versions { version digest } columns { name label { level } needsClassification } catalog { published blockers } } }`;
    const columns = [
      { name: 'id', type: 'string', label: { level: 'PUBLIC' } },
      { name: 'n', type: 'int', label: { level: 'INTERNAL' } },
    ];
    await alice.gql(`mutation ($c: [DatasetColumnInput!]!) { createDataset(name: "crm/snapshots", domain: adhoc, columns: $c, digest: "${DIGEST}") { id } }`, {
      c: columns,
    });
    await alice.gql(`mutation { publishDatasetToCatalog(name: "crm/snapshots") { id } }`);
    // the same content again records nothing
    expect((await alice.gql(ADD, { n: 'crm/snapshots', c: columns, d: DIGEST })).addDatasetVersion.versions).toHaveLength(1);
    // someone outside the owning team may not add one; an unknown dataset is NOT_FOUND; a lowered label is refused
    expect(codeOf(await eve.raw(ADD, { n: 'crm/snapshots', c: columns, d: `sha256:${'b'.repeat(64)}` }))).toBe('FORBIDDEN');
    expect(codeOf(await alice.raw(ADD, { n: 'crm/nothing', c: columns, d: DIGEST }))).toBe('NOT_FOUND');
    const lowered = await alice.raw(ADD, { n: 'crm/snapshots', c: [columns[0], { ...columns[1], label: { level: 'PUBLIC' } }], d: `sha256:${'b'.repeat(64)}` });
    expect(codeOf(lowered)).toBe('BAD_USER_INPUT');
    expect(msgOf(lowered)).toMatch(/n is already INTERNAL; change it with setColumnLabel \(up\) or requestDeclassification \(down\)/);

    const { addDatasetVersion } = await alice.gql(ADD, {
      n: 'crm/snapshots',
      c: [
        { name: 'id', type: 'string' },
        { name: 'n', type: 'int' },
        { name: 'note', type: 'string' },
      ],
      d: `sha256:${'b'.repeat(64)}`,
    });
    expect(addDatasetVersion.versions.map((v: any) => v.version)).toEqual([2, 1]);
    expect(addDatasetVersion.columns).toEqual([
      { name: 'id', label: { level: 'PUBLIC' }, needsClassification: false },
      { name: 'n', label: { level: 'INTERNAL' }, needsClassification: false },
      { name: 'note', label: { level: 'UNCLASSIFIED' }, needsClassification: true },
    ]);
    expect(addDatasetVersion.catalog.published).toBe(false);
    expect(addDatasetVersion.catalog.blockers.join()).toMatch(/note/);
    const { auditEvents } = await t.api.gql(`{ auditEvents(subject: "dataset:crm/snapshots") { action details } }`);
    expect(auditEvents.map((e: any) => e.action)).toEqual(expect.arrayContaining(['dataset.version', 'catalog.withdraw']));
    expect(auditEvents.find((e: any) => e.action === 'dataset.version').details).toMatchObject({ version: 2, added: ['note'], removed: [] });
  });

  it('audits every decision and grant change, readable by admins only', async () => {
    expect(codeOf(await alice.raw(`{ auditEvents { id } }`))).toBe('FORBIDDEN');
    const { auditEvents } = await t.api.gql(`{ auditEvents(limit: 200) { action decision subject rule identity { name } } }`);
    const seen = auditEvents.map((e: any) => `${e.identity?.name}:${e.action}:${e.decision}:${e.subject}`);
    expect(seen).toEqual(
      expect.arrayContaining([
        'admin:team.member.set:allow:team:crm',
        'admin:namespace.assign:allow:namespace:crm',
        'alice:dataset.create:allow:dataset:crm/users',
        'alice:label.set:deny:dataset:crm/users.country',
        'alice:declassification.decide:deny:dataset:crm/users.country',
        'bob:declassification.decide:allow:dataset:crm/users.country',
      ]),
    );
    const denials = auditEvents
      .filter((e: any) => e.action === 'declassification.decide' && e.decision === 'deny')
      .map((e: any) => `${e.identity.name}: ${e.rule}`);
    expect(denials.sort()).toEqual([
      'alice: the approver of a declassification is a different human from its author (a service account counts as its owner)',
      'eve: deciders are admins or members of the owning team',
    ]);
  });
});
