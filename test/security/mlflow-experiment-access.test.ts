// Who may put a run into an experiment, and which experiments a task's own token reads, over the MLflow REST API, as
// an attacker tries it: a member of another team logged runs into a team's (a workflow's) experiment, filling what
// its owners compare and search; a task's own token (MLFLOW_TRACKING_TOKEN, which GraphQL gives nothing) listed every
// team's experiments, their names and tags.
import { eq } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensureIdentity, issueToken } from '../../server/auth/tokens';
import { runs } from '../../server/db/tables/runs';
import { teams } from '../../server/db/tables/teams';
import { experiments } from '../../server/db/tables/tracking';
import { TASK_TRACKING_IDENTITY } from '../../server/tracking/task-tokens';
import { startTestApp, type TestApp } from '../harness/app';

let t: TestApp;
let alice: string; // team alpha
let bob: string; // team beta
let teamExperiment: string; // alpha's, as a workflow's own is
let aliceExperiment: string; // made by alice, no team

async function mlflow(path: string, as: string, body: Record<string, unknown>, method = 'POST') {
  const query = method === 'GET' ? `?${new URLSearchParams(body as Record<string, string>)}` : '';
  const res = await fetch(`${t.url}/api/2.0/mlflow/${path}${query}`, {
    method,
    headers: { authorization: `Bearer ${as}`, 'content-type': 'application/json' },
    body: method === 'GET' ? undefined : JSON.stringify(body),
  });
  return { status: res.status, body: (await res.json()) as any };
}
const runsIn = async (experimentId: string) => (await t.app.services.db.select().from(runs).where(eq(runs.experimentId, experimentId))).length;

beforeAll(async () => {
  t = await startTestApp();
  alice = (await t.user('exp-alice')).token;
  bob = (await t.user('exp-bob')).token;
  await t.team('alpha', ['exp-alice']);
  await t.team('beta', ['exp-bob']);
  const db = t.app.services.db;
  const [alpha] = await db.select().from(teams).where(eq(teams.name, 'alpha'));
  const [made] = await db
    .insert(experiments)
    .values({ name: 'alpha-churn', teamId: alpha!.id, tags: { secret: 'alpha-plan' } })
    .returning();
  teamExperiment = made!.id;
  aliceExperiment = (await mlflow('experiments/create', alice, { name: 'alice-notes', tags: [{ key: 'k', value: 'alice-tag' }] })).body.experiment_id;
}, 60_000);
afterAll(async () => t?.stop());

describe('a run put into an experiment', () => {
  it('is refused to whoever does not own the experiment, by id or by name, and nothing is made', async () => {
    for (const ref of [{ experiment_id: teamExperiment }, { experiment_id: 'alpha-churn' }, { experiment_id: aliceExperiment }]) {
      const r = await mlflow('runs/create', bob, ref);
      expect([r.status, r.body.error_code], JSON.stringify(ref)).toEqual([403, 'PERMISSION_DENIED']);
      expect(r.body.message).toMatch(/only its members \(or an admin\)|only it \(or an admin\)/);
    }
    expect(await runsIn(teamExperiment)).toBe(0);
    expect(await runsIn(aliceExperiment)).toBe(0);
  });

  it('is taken from its team’s members, its creator, an admin; Default takes everyone’s', async () => {
    expect((await mlflow('runs/create', alice, { experiment_id: teamExperiment })).status).toBe(200);
    expect((await mlflow('runs/create', alice, { experiment_id: aliceExperiment })).status).toBe(200);
    expect((await mlflow('runs/create', t.app.adminToken, { experiment_id: teamExperiment })).status).toBe(200);
    expect((await mlflow('runs/create', bob, {})).status).toBe(200);
    expect((await mlflow('runs/create', bob, { experiment_id: '0' })).status).toBe(200);
    expect(await runsIn(teamExperiment)).toBe(2);
  });
});

describe('a task’s own token', () => {
  it('reads its run’s experiment alone: get, get-by-name and search find no other', async () => {
    // bob's run in Default, and a token bound to its task as the control plane mints one for an attempt.
    const run = (await mlflow('runs/create', bob, {})).body.run.info.run_id as string;
    const db = t.app.services.db;
    const identity = await ensureIdentity(db, { name: TASK_TRACKING_IDENTITY, kind: 'service', role: 'viewer' });
    const taskToken = await issueToken(db, identity.id, `task ${run}`, { scopes: [], task: { id: run, attempt: 1 } });
    expect((await mlflow('runs/get', taskToken, { run_id: run }, 'GET')).status).toBe(200);

    const found = await mlflow('experiments/search', taskToken, { max_results: 1000 });
    expect(found.status).toBe(200);
    expect(found.body.experiments.map((e: { name: string }) => e.name)).toEqual(['Default']);
    for (const [path, body] of [
      ['experiments/get', { experiment_id: teamExperiment }],
      ['experiments/get', { experiment_id: aliceExperiment }],
      ['experiments/get-by-name', { experiment_name: 'alpha-churn' }],
    ] as const) {
      const r = await mlflow(path, taskToken, body, 'GET');
      expect([r.status, r.body.error_code], `${path} ${JSON.stringify(body)}`).toEqual([404, 'RESOURCE_DOES_NOT_EXIST']);
      expect(JSON.stringify(r.body)).not.toMatch(/alpha-plan|alice-tag/);
    }
    expect((await mlflow('experiments/get-by-name', taskToken, { experiment_name: 'Default' }, 'GET')).status).toBe(200);
    // A member reads them all, as the experiments query answers them.
    expect((await mlflow('experiments/get', bob, { experiment_id: teamExperiment }, 'GET')).status).toBe(200);
  });
});
