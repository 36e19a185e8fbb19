// Governance from the command line, as users run it: the real CLI as child processes against one real server,
// as the admin and as two members of the team owning the namespace. Datasets with labels, previews with withheld
// columns and a refused filter oracle, labels raised, a declassification approved by someone else, the catalog
// refusing with its blockers, the audit log, domain grants and service-account tokens.
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestApp, type TestApp } from '../harness/app';
import { runCli, showCli as show } from '../harness/cli';

let t: TestApp;
let scratch: string;
const tokens: Record<string, string> = {};

/** `atelier ARGS` as `who` (the admin unless named). */
const cli = (args: string[], who = 'admin') => runCli({ url: t.url, token: who === 'admin' ? t.app.adminToken : tokens[who]! }, args);
const digest = `sha256:${'a'.repeat(64)}`;

beforeAll(async () => {
  t = await startTestApp();
  scratch = await mkdtemp(path.join(os.tmpdir(), 'atelier-cli-governance-'));
  for (const name of ['alice', 'bob'])
    tokens[name] = (await t.api.gql(`mutation ($n: String!) { createUser(name: $n) { token } }`, { n: name })).createUser.token;
  await t.api.gql(`mutation { createTeam(name: "crm") { id } }`);
  await t.api.gql(`mutation { setTeamMember(team: "crm", identity: "alice") { id } }`);
  await t.api.gql(`mutation { setTeamMember(team: "crm", identity: "bob") { id } }`);
  await t.api.gql(`mutation { assignNamespace(namespace: "crm", team: "crm") { id } }`);
  await writeFile(
    path.join(scratch, 'users.json'),
    JSON.stringify([
      { id: 1, email: 'a@example.com', country: 'FR', note: 'vip' },
      { id: 2, email: 'b@example.com', country: 'DE', note: '' },
      { id: 3, email: 'c@example.com', country: 'FR', note: 'churn risk' },
    ]),
  );
});
afterAll(async () => {
  await t?.stop();
  if (scratch) await rm(scratch, { recursive: true, force: true });
});

describe('atelier dataset, declassify and audit', () => {
  it('refuses a bad column spec before sending anything, saying what a spec looks like', async () => {
    const r = await cli(
      ['dataset', 'create', 'crm/bad', '--domain', 'adhoc', '--column', 'id:int:PUBLIC', '--column', 'email:string:SECRET:PII', '--digest', digest],
      'alice',
    );
    expect(r.code, show(r)).not.toBe(0);
    expect(r.stderr).toMatch(/column "email": "SECRET" is not a level; use PUBLIC, INTERNAL, CONFIDENTIAL, RESTRICTED/);
    const noType = await cli(['dataset', 'create', 'crm/bad', '--domain', 'adhoc', '--column', 'email', '--digest', digest], 'alice');
    expect(noType.code).not.toBe(0);
    expect(noType.stderr).toMatch(/expected name:type\[:LEVEL\[:CAT,CAT\]\], e\.g\. email:string:CONFIDENTIAL:PII; "email" has no type/);
    expect((await t.api.gql(`{ datasets { fullName } }`)).datasets).toEqual([]);
  });

  it('creates a dataset with labels and a sample, and shows it with the UNCLASSIFIED column flagged', async () => {
    const created = await cli(
      [
        'dataset',
        'create',
        'crm/users',
        '--domain',
        'adhoc',
        '--column',
        'id:int:PUBLIC',
        '--column',
        'email:string:confidential:pii',
        '--column',
        'country:string:INTERNAL',
        '--column',
        'note:string',
        '--digest',
        digest,
        '--sample',
        path.join(scratch, 'users.json'),
      ],
      'alice',
    );
    expect(created.code, show(created)).toBe(0);
    expect(created.stdout).toMatch(/^created dataset crm\/users \(adhoc, 4 columns, 3 sample rows\)$/m);
    expect(created.stdout).toMatch(/^1 column UNCLASSIFIED: classify with `atelier dataset label crm\/users COLUMN LEVEL`$/m);

    const shown = await cli(['dataset', 'show', 'crm/users'], 'bob');
    expect(shown.code, show(shown)).toBe(0);
    expect(shown.stdout).toMatch(/^ {2}email +string +CONFIDENTIAL\{PII\} +-$/m);
    expect(shown.stdout).toMatch(/^ {2}note +string +UNCLASSIFIED +- +needs classification$/m);
    expect(shown.stdout).toMatch(/^ {2}1 +sha256:a{64} /m);
    expect(shown.stdout).toMatch(
      /crm\/users is not in the interactive catalog\nblocked from publishing by:\n {2}- email \(CONFIDENTIAL\{PII\}\): PII is never shown .*\n {2}- note \(UNCLASSIFIED\): UNCLASSIFIED/,
    );

    const listed = await cli(['dataset', 'list', '--domain', 'adhoc']);
    expect(listed.stdout.split('\n')[0]).toMatch(/^NAME +DOMAIN +COLUMNS +UNCLASSIFIED +CATALOG$/);
    expect(listed.stdout).toMatch(/^crm\/users +adhoc +4 +1 +-$/m);
  });

  it('records a new version: kept labels stay, a new column starts UNCLASSIFIED', async () => {
    const added = await cli(['dataset', 'version', 'crm/ledger', '--column', 'id:int:PUBLIC', '--column', 'memo:string', '--digest', digest], 'alice');
    expect(added.code).not.toBe(0);
    // says how to make it from here, not only the mutation's name
    expect(added.stderr).toMatch(/No dataset crm\/ledger; create it with `npx atelier dataset create crm\/ledger --domain D --column name:type …`/);
    await cli(['dataset', 'create', 'crm/ledger', '--domain', 'adhoc', '--column', 'id:int:PUBLIC', '--digest', digest], 'alice');
    const next = await cli(
      ['dataset', 'version', 'crm/ledger', '--column', 'id:int', '--column', 'memo:string', '--digest', `sha256:${'e'.repeat(64)}`],
      'alice',
    );
    expect(next.code, show(next)).toBe(0);
    expect(next.stdout).toMatch(/^crm\/ledger is at version 2$/m);
    expect(next.stdout).toMatch(/^1 column UNCLASSIFIED: classify with `atelier dataset label crm\/ledger COLUMN LEVEL`$/m);
    expect((await cli(['dataset', 'show', 'crm/ledger'])).stdout).toMatch(/^ {2}id +int +PUBLIC /m);
  });

  it('records a dataset’s partitions and profile, as the API takes them, at create and with a new version', async () => {
    const [d1, d2] = [`sha256:${'1'.repeat(64)}`, `sha256:${'2'.repeat(64)}`];
    const created = await cli(
      ['dataset', 'create', 'crm/days', '--domain', 'adhoc', '--column', 'id:int:PUBLIC', '--digest', digest, '--partition', `day=2026-01-01@${d1}@1000`],
      'alice',
    );
    expect(created.code, show(created)).toBe(0);
    expect(created.stdout).toMatch(/^created dataset crm\/days \(adhoc, 1 columns, 1 partitions\)$/m);
    const profile = path.join(scratch, 'profile.json');
    await writeFile(
      profile,
      JSON.stringify({
        id: {
          kind: 'numeric',
          count: 2,
          nulls: 0,
          min: 1,
          max: 2,
          histogram: { edges: [1, 2], counts: [2] },
          values: [
            [1, 1],
            [2, 1],
          ],
        },
      }),
    );
    const next = await cli(
      [
        'dataset',
        'version',
        'crm/days',
        '--column',
        'id:int',
        '--digest',
        d2,
        '--partition',
        `day=1@${d1}`,
        '--partition',
        `day=2@${d2}@5`,
        '--profile',
        profile,
      ],
      'alice',
    );
    expect(next.code, show(next)).toBe(0);
    const { dataset, datasetProfile } = await t.api.gql(
      `{ dataset(name: "crm/days") { versions { version partitions { name digest rows } } } datasetProfile(name: "crm/days", version: 2) { columns { column count summary } } }`,
    );
    const byVersion = Object.fromEntries(dataset.versions.map((v: { version: number; partitions: unknown[] }) => [v.version, v.partitions]));
    expect(byVersion[1]).toEqual([{ name: 'day=2026-01-01', digest: d1, rows: 1000 }]);
    expect(datasetProfile.columns).toMatchObject([{ column: 'id', count: 2, summary: { max: 2 } }]);
    expect(byVersion[2]).toEqual([
      { name: 'day=1', digest: d1, rows: null },
      { name: 'day=2', digest: d2, rows: 5 },
    ]);
    const bad = await cli(['dataset', 'version', 'crm/days', '--column', 'id:int', '--digest', d1, '--partition', 'day=3'], 'alice');
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(/expected NAME@sha256:HEX or NAME@sha256:HEX@ROWS/);
    // and its freshness, as setDatasetFreshness takes it
    const fresh = await cli(['dataset', 'freshness', 'crm/days', '--every', '1d', '--policy', 'wait', '--max-wait', '2h'], 'alice');
    expect(fresh.stdout, show(fresh)).toMatch(/^crm\/days: a new version every 1d \(WAIT\), next due /);
    expect((await cli(['dataset', 'show', 'crm/days'])).stdout).toMatch(/^freshness: a new version every 1d \(runs reading it while late: WAIT, up to 2h\)/m);
    expect((await cli(['dataset', 'freshness', 'crm/days'], 'alice')).stdout).toBe('crm/days: no freshness expectation\n');
  });

  it('previews only the columns a member may read, listing the withheld ones, and groups', async () => {
    const rows = await cli(['dataset', 'preview', 'crm/users', '--where', 'country=FR', '--order-by', 'id:desc'], 'alice');
    expect(rows.code, show(rows)).toBe(0);
    expect(rows.stdout.trim().split('\n')).toEqual(['id  country', '3   FR', '1   FR', '', 'withheld (not readable at your clearance): email, note']);

    const groups = await cli(['dataset', 'preview', 'crm/users', '--group-by', 'country'], 'alice');
    expect(groups.code, show(groups)).toBe(0);
    expect(groups.stdout).toMatch(/^country +COUNT\nFR +2\nDE +1\n/);
    expect(groups.stdout).toMatch(/withheld \(not readable at your clearance\): email, note/);
  });

  it('refuses a filter on a withheld column (an oracle) with the API’s FORBIDDEN message and a nonzero exit', async () => {
    const r = await cli(['dataset', 'preview', 'crm/users', '--where', 'email=a@example.com'], 'alice');
    expect(r.code, show(r)).toBe(1);
    expect(r.stdout).toBe('');
    expect(r.stderr).toMatch(/^error \[FORBIDDEN\]: email cannot be used to filter, sort or group: not readable at your clearance\.$/m);
    expect(r.stderr).toMatch(/hint: `atelier dataset show crm\/users` shows each column’s label/);
  });

  it('raises a label; lowering one is refused and points at declassify', async () => {
    const raised = await cli(['dataset', 'label', 'crm/users', 'country', 'confidential', '--reason', 'country with city is identifying'], 'alice');
    expect(raised.stdout.trim(), show(raised)).toBe('crm/users.country is now CONFIDENTIAL');
    const lowered = await cli(['dataset', 'label', 'crm/users', 'country', 'PUBLIC'], 'alice');
    expect(lowered.code, show(lowered)).toBe(1);
    expect(lowered.stderr).toMatch(/error \[FORBIDDEN\]: crm\/users\.country is CONFIDENTIAL; lowering it to PUBLIC is a declassification/);
    expect(lowered.stderr).toMatch(/hint: .*`atelier declassify request NAME COLUMN LEVEL --reason …`/);
  });

  it('declassifies with a request approved by someone other than its author', async () => {
    const asked = await cli(['declassify', 'request', 'crm/users', 'country', 'INTERNAL', '--reason', 'only the country is kept'], 'alice');
    expect(asked.code, show(asked)).toBe(0);
    const id = /request (\S+)$/m.exec(asked.stdout)?.[1];
    expect(asked.stdout).toMatch(/^asked to lower crm\/users\.country from CONFIDENTIAL to INTERNAL: request /m);

    const pending = await cli(['declassify', 'list'], 'bob');
    expect(pending.stdout).toMatch(new RegExp(`^${id} +PENDING +crm/users.country +CONFIDENTIAL +INTERNAL +alice +- .* only the country is kept$`, 'm'));

    const own = await cli(['declassify', 'approve', id!], 'alice');
    expect(own.code).toBe(1);
    expect(own.stderr).toMatch(/error \[FORBIDDEN\]: You asked for this declassification, so someone else must decide it\./);

    const approved = await cli(['declassify', 'approve', id!], 'bob');
    expect(approved.stdout.trim(), show(approved)).toBe(`approved ${id}: country is now INTERNAL (was CONFIDENTIAL)`);
    expect((await cli(['declassify', 'list'], 'bob')).stdout.trim()).toBe('no declassification requests wait for a decision');
    expect((await cli(['declassify', 'list', '--all'], 'bob')).stdout).toMatch(new RegExp(`^${id} +APPROVED .* bob `, 'm'));
  });

  it('refuses to publish while columns block it, naming each; publishes and withdraws once they do not', async () => {
    const refused = await cli(['dataset', 'publish', 'crm/users'], 'alice');
    expect(refused.code, show(refused)).toBe(1);
    expect(refused.stderr).toMatch(/error \[FORBIDDEN\]: crm\/users cannot be published to the interactive catalog/);
    expect(refused.stderr).toMatch(/email \(CONFIDENTIAL\{PII\}\): PII is never shown in the catalog/);
    expect(refused.stderr).toMatch(/note \(UNCLASSIFIED\): UNCLASSIFIED/);
    expect(refused.stderr).toMatch(/hint: classify with `atelier dataset label crm\/users COLUMN LEVEL`/);

    const events = await cli(
      ['dataset', 'create', 'crm/events', '--domain', 'adhoc', '--column', 'id:int:PUBLIC', '--column', 'kind:string:INTERNAL', '--digest', digest],
      'alice',
    );
    expect(events.code, show(events)).toBe(0);
    const published = await cli(['dataset', 'publish', 'crm/events'], 'alice');
    expect(published.stdout, show(published)).toMatch(/^crm\/events is in the interactive catalog \(published by alice at /);
    expect((await cli(['dataset', 'list', '--catalog'])).stdout).toMatch(/^NAME .*\ncrm\/events +adhoc +2 +- +published\n$/);
    const withdrawn = await cli(['dataset', 'withdraw', 'crm/events', '--reason', 'stale'], 'alice');
    expect(withdrawn.stdout.trim(), show(withdrawn)).toBe('crm/events is not in the interactive catalog');
  });

  it('shows the audit log to admins; a member gets the API’s FORBIDDEN message', async () => {
    const r = await cli(['audit', '--subject', 'dataset:crm/users.country', '--since', '1h']);
    expect(r.code, show(r)).toBe(0);
    const lines = r.stdout.trim().split('\n');
    expect(lines[0]).toMatch(/^AT +WHO +ACTION +DECISION +SUBJECT +RULE +DETAILS$/);
    expect(lines.slice(1).map((l) => l.split(/ {2,}/).slice(1, 4))).toEqual([
      ['bob', 'declassification.decide', 'allow'],
      ['alice', 'declassification.decide', 'deny'],
      ['alice', 'declassification.request', 'allow'],
      ['alice', 'label.set', 'deny'],
      ['alice', 'label.set', 'allow'],
    ]);
    const json = JSON.parse((await cli(['audit', '--subject', 'dataset:crm/users', '--limit', '1', '--json'])).stdout);
    expect(json).toEqual([
      expect.objectContaining({
        action: 'catalog.publish',
        decision: 'deny',
        identity: { name: 'alice' },
        details: { blockers: expect.arrayContaining([expect.stringMatching(/^note /)]) },
      }),
    ]);

    const member = await cli(['audit'], 'alice');
    expect(member.code).toBe(1);
    expect(member.stderr).toMatch(/^error \[FORBIDDEN\]: .*audit log/m);
  });

  it('grants and revokes a domain, and manages a service account’s tokens', async () => {
    const granted = await cli(['team', 'grant', 'crm', 'production']);
    expect(granted.stdout.trim(), show(granted)).toBe('team crm may now work in production; its domains: production');
    expect((await cli(['team', 'list'])).stdout).toMatch(/^crm {2}namespaces: crm {2}domains: production {2}members: /m);
    const revoked = await cli(['team', 'revoke', 'crm', 'production']);
    expect(revoked.stdout.trim()).toBe('team crm may no longer work in production; its domains: experimentation only');
    expect((await cli(['team', 'grant', 'crm', 'adhoc'], 'alice')).stderr).toMatch(/error \[FORBIDDEN\]: Only admins grant domains to teams\./);

    const created = await cli(['service-account', 'create', 'ci', '--scopes', 'read:Run,start:Run', '--expires-in-days', '30']);
    expect(created.code, show(created)).toBe(0);
    const token = created.stdout.trim();
    expect(created.stderr).toMatch(/^token for ci \(member\), limited to read:Run, start:Run, expires \d{4}-/);
    expect((await runCli({ url: t.url, token }, ['run', 'list'])).stdout).toMatch(/^no runs yet: start one with `atelier run start WORKFLOW`/);
    const scoped = await runCli({ url: t.url, token }, ['dataset', 'list']);
    expect(scoped.code, show(scoped)).toBe(1);
    expect(scoped.stderr).toMatch(/error \[FORBIDDEN\]/);

    const second = await cli(['service-account', 'token', 'ci']);
    expect(second.stderr, show(second)).toMatch(/not limited by scopes, never expires/);
    const gone = await cli(['service-account', 'revoke', 'ci']);
    expect(gone.stdout.trim()).toBe('revoked 2 tokens of ci; issue a new one with `atelier service-account token ci`');
    expect((await runCli({ url: t.url, token }, ['run', 'list'])).stderr).toMatch(/UNAUTHENTICATED/);
  });

  it('revokes one token by its text with `atelier token revoke`, leaving the identity’s others live', async () => {
    const first = (await cli(['service-account', 'token', 'ci'])).stdout.trim();
    const second = (await cli(['service-account', 'token', 'ci'])).stdout.trim();
    const byMember = await cli(['token', 'revoke', first], 'alice');
    expect(byMember.stderr, show(byMember)).toMatch(/^error \[FORBIDDEN\]/m);
    expect((await runCli({ url: t.url, token: first }, ['run', 'list'])).code).toBe(0);

    const revoked = await cli(['token', 'revoke', first]);
    expect(revoked.stdout.trim(), show(revoked)).toBe('revoked: requests with this token are refused from now on');
    expect((await runCli({ url: t.url, token: first }, ['run', 'list'])).stderr).toMatch(/UNAUTHENTICATED/);
    expect((await runCli({ url: t.url, token: second }, ['run', 'list'])).code).toBe(0);
    expect((await cli(['token', 'revoke', first])).stdout.trim()).toBe('already revoked: nothing changed');
    const unknown = await cli(['token', 'revoke', 'not-a-token-of-this-server-0123456789']);
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toMatch(/error \[NOT_FOUND\]: No token here has that text/);
  });
});
