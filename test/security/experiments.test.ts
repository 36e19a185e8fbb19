// Who may make and change experiments, as an attacker tries it: a viewer, a token scoped to reading and a task's own
// token may not make one over MLflow (they could: experiments/create asked for nothing but a token, so a read-only
// identity filled the list and took names), and the Default experiment, where runs that name none go, is changed
// by admins only, whoever's run happened to make it first (that member owned it and could tag it).
import { eq } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { issueToken } from '../../server/auth/tokens';
import { identities } from '../../server/db/tables/identities';
import { experiments } from '../../server/db/tables/tracking';
import { startTestApp, type TestApp } from '../harness/app';

let t: TestApp;
let member: Awaited<ReturnType<TestApp['user']>>;
let viewer: string;
let readOnly: string;

async function mlflow(path: string, as: string, body: unknown) {
  const res = await fetch(`${t.url}/api/2.0/mlflow/${path}`, {
    method: 'POST',
    headers: { authorization: `Bearer ${as}`, 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  return { status: res.status, body: (await res.json()) as any };
}

beforeAll(async () => {
  t = await startTestApp();
  member = await t.user('exp-member');
  viewer = (await t.user('exp-viewer', 'viewer')).token;
  const [me] = await t.app.services.db.select().from(identities).where(eq(identities.name, 'exp-member'));
  readOnly = await issueToken(t.app.services.db, me!.id, 'read-only', { scopes: ['read:Run', 'read:Experiment'] });
}, 60_000);
afterAll(async () => t?.stop());

describe('making an experiment over MLflow', () => {
  it('is refused to a viewer and to a token scoped to reading, and makes nothing', async () => {
    for (const [who, token] of [
      ['viewer', viewer],
      ['read-only token', readOnly],
    ] as const) {
      const r = await mlflow('experiments/create', token, { name: `squat-${who}` });
      expect([r.status, r.body.error_code], who).toEqual([403, 'PERMISSION_DENIED']);
    }
    const made = await t.app.services.db.select().from(experiments);
    expect(made.map((e) => e.name).filter((n) => n.startsWith('squat-'))).toEqual([]);
    expect((await mlflow('experiments/create', member.token, { name: 'mine' })).status).toBe(200);
  });
});

describe('the Default experiment', () => {
  it('is changed by admins only, though a member’s run made it', async () => {
    // The member's run, naming no experiment, makes Default (its creator recorded).
    expect((await mlflow('runs/create', member.token, {})).status).toBe(200);
    const [made] = await t.app.services.db.select().from(experiments).where(eq(experiments.name, 'Default'));
    const refused = await mlflow('experiments/set-experiment-tag', member.token, { experiment_id: made!.id, key: 'owner', value: 'me' });
    expect([refused.status, refused.body.error_code]).toEqual([403, 'PERMISSION_DENIED']);
    const can = await member.gql('{ experiment(name: "Default") { viewerCan { change { allowed } } } }');
    expect(can.experiment.viewerCan.change.allowed).toBe(false);
    expect((await mlflow('experiments/set-experiment-tag', t.app.adminToken, { experiment_id: made!.id, key: 'team', value: 'all' })).status).toBe(200);
    const [after] = await t.app.services.db.select().from(experiments).where(eq(experiments.name, 'Default'));
    expect(after!.tags).toEqual({ team: 'all' });
  });
});

describe('experiment tags', () => {
  it('keep a tag named __proto__ or constructor as any other (set, read back, removed), touching no prototype', async () => {
    const id = (await mlflow('experiments/create', member.token, { name: 'proto-tags' })).body.experiment_id as string;
    for (const key of ['__proto__', 'constructor'])
      expect((await mlflow('experiments/set-experiment-tag', member.token, { experiment_id: id, key, value: 'x' })).status).toBe(200);
    const [row] = await t.app.services.db.select().from(experiments).where(eq(experiments.id, id));
    expect(Object.entries(row!.tags)).toEqual([
      ['__proto__', 'x'],
      ['constructor', 'x'],
    ]);
    expect((await mlflow('experiments/delete-experiment-tag', member.token, { experiment_id: id, key: '__proto__' })).status).toBe(200);
    const [after] = await t.app.services.db.select().from(experiments).where(eq(experiments.id, id));
    expect(Object.keys(after!.tags)).toEqual(['constructor']);
    expect(({} as Record<string, unknown>).x).toBeUndefined();
  });
});

describe('reading experiments over MLflow', () => {
  it('needs read:Experiment of a scoped token, as the experiments query does', async () => {
    const [me] = await t.app.services.db.select().from(identities).where(eq(identities.name, 'exp-member'));
    const publisher = await issueToken(t.app.services.db, me!.id, 'ci', { scopes: ['publish:Module', 'read:Module'] });
    const read = (token: string, path: string, query: Record<string, string>) =>
      fetch(`${t.url}/api/2.0/mlflow/${path}?${new URLSearchParams(query)}`, { headers: { authorization: `Bearer ${token}` } }).then(async (r) => ({
        status: r.status,
        body: (await r.json()) as any,
      }));
    const id = (await mlflow('experiments/create', member.token, { name: 'readable' })).body.experiment_id as string;
    for (const [path, query] of [
      ['experiments/search', {}],
      ['experiments/get-by-name', { experiment_name: 'readable' }],
      ['experiments/get', { experiment_id: id }],
    ] as const) {
      const refused = await read(publisher, path, query);
      expect([refused.status, refused.body.error_code], path).toEqual([403, 'PERMISSION_DENIED']);
      expect((await read(readOnly, path, query)).status, path).toBe(200);
      expect((await read(member.token, path, query)).status, path).toBe(200);
    }
  });
});
