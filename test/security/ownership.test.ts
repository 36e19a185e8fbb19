// Ownership (issue 22, leaks 2–4), against one real server with two teams that are both granted production:
// "prod" (mia, and vic, a viewer of it) and "lab" (oscar), plus nora, a member of no team with no grant.
// 2. a hot cluster belongs to a team: nobody else runs tasks on it (by any path a run can name or reach one), its
//    idle timeout is bounded, and a member creates one only on a pool open to them;
// 3. workflows and schedules belong to a team: only its writing members (and admins) publish versions and change
//    schedules; a schedule fires only what its owners publish, with its owners' grants;
// 4. a workflow moved to a more open domain does not open what was stored under the old one.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../server/config';
import { startTestApp, type TestApp } from '../harness/app';
import { runCli } from '../harness/cli';
import type { ApiClient } from '../harness/client';

const SECRET = 'sched-s3cret-4e1d';
const DEFAULT_SECRET = 'default-s3cret-77aa';

let t: TestApp;
let mia: ApiClient & { token: string }; // team prod (member), prod granted production
let vic: ApiClient & { token: string }; // team prod, role viewer
let oscar: ApiClient & { token: string }; // team lab (member), lab granted production too
let nora: ApiClient & { token: string }; // no team, no grant

const codes = (r: { errors?: { extensions?: { code?: string } }[] }) => (r.errors ?? []).map((e) => e.extensions?.code);
const has = (r: unknown, secret: string) => JSON.stringify(r).includes(secret);
const SCHEDULE = `mutation ($input: CreateScheduleInput!) { createSchedule(input: $input) { id team { name } } }`;
const PUBLISH = `mutation ($s: String!, $team: String) { createWorkflow(spec: $s, team: $team) { created workflow { name team { name } } version { version } } }`;

async function audited(since: Date, action: string, decision = 'deny'): Promise<boolean> {
  const { auditEvents } = await t.api.gql(`query ($s: DateTime) { auditEvents(since: $s, limit: 1000) { action decision } }`, {
    s: new Date(since.getTime() - 1000).toISOString(),
  });
  return auditEvents.some((e: any) => e.action === action && e.decision === decision);
}

const reportSpec = (overrides: object = {}) =>
  JSON.stringify({
    name: 'prod-report',
    domain: 'production',
    parameters: { greeting: { default: 'hi' } },
    tasks: [{ name: 'say', module: 'test/echo', pool: 'parked', parameters: { message: '${params.greeting}', steps: 1 } }],
    ...overrides,
  });

async function schedule(api: ApiClient, input: object): Promise<string> {
  return (await api.gql(SCHEDULE, { input })).createSchedule.id;
}

const scheduleOf = async (id: string) =>
  (await t.api.gql(`query ($id: ID!) { schedule(id: $id) { id paused parameters team { name } fires(limit: 100) { outcome message run { id } } } }`, { id }))
    .schedule;

async function until<T>(read: () => Promise<T>, ok: (value: T) => boolean, timeoutMs = 20_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await read();
    if (ok(value) || Date.now() > deadline) return value;
    await new Promise((r) => setTimeout(r, 150));
  }
}

let reportSchedule = '';

beforeAll(async () => {
  t = await startTestApp();
  await t.publishFixture('echo');
  mia = await t.user('mia');
  vic = await t.user('vic');
  oscar = await t.user('oscar');
  nora = await t.user('nora');
  await t.team('prod', ['mia']);
  await t.team('lab', ['oscar']);
  await t.api.gql(`mutation { setTeamMember(team: "prod", identity: "vic", role: viewer) { id } }`);
  await t.api.gql(`mutation { grantDomain(team: "prod", domain: production) { id } }`);
  await t.api.gql(`mutation { grantDomain(team: "lab", domain: production) { id } }`);
  const created = await mia.gql(PUBLISH, { s: reportSpec() });
  if (created.createWorkflow.workflow.team?.name !== 'prod') throw new Error(`prod-report should belong to prod: ${JSON.stringify(created)}`);
  reportSchedule = await schedule(mia, { workflow: 'prod-report', cron: '0 0 1 1 *', parameters: { greeting: SECRET } });
}, 120_000);

afterAll(async () => {
  await t?.stop();
});

describe('leak 3: a schedule belongs to its workflow’s team', () => {
  it('exposes the owner: Workflow.team and Schedule.team', async () => {
    const r = await oscar.gql(`query ($id: ID!) { workflow(name: "prod-report") { team { name } } schedule(id: $id) { team { name } } }`, {
      id: reportSchedule,
    });
    expect(r).toEqual({ workflow: { team: { name: 'prod' } }, schedule: { team: { name: 'prod' } } });
  });

  it('another team’s member with a production grant may not change its parameters (refused, audited, unchanged)', async () => {
    const since = new Date();
    const r = await oscar.raw(`mutation ($id: ID!) { updateSchedule(id: $id, input: { parameters: { greeting: "pwned" }, cron: "* * * * *" }) { id } }`, {
      id: reportSchedule,
    });
    expect(codes(r)).toEqual(['FORBIDDEN']);
    expect(r.errors?.[0]?.message).toMatch(/belongs to team "prod"; only its members \(or an admin\) may change it/);
    expect(await audited(since, 'schedule.update')).toBe(true);
    const after = await scheduleOf(reportSchedule);
    expect(after.parameters).toEqual({ greeting: SECRET });
  });

  it('… nor pause it', async () => {
    const since = new Date();
    expect(codes(await oscar.raw(`mutation ($id: ID!) { pauseSchedule(id: $id) { paused } }`, { id: reportSchedule }))).toEqual(['FORBIDDEN']);
    expect(await audited(since, 'schedule.pause')).toBe(true);
    expect((await scheduleOf(reportSchedule)).paused).toBe(false);
  });

  it('… nor resume it once its team paused it', async () => {
    expect((await mia.gql(`mutation ($id: ID!) { pauseSchedule(id: $id) { paused } }`, { id: reportSchedule })).pauseSchedule.paused).toBe(true);
    const since = new Date();
    expect(codes(await oscar.raw(`mutation ($id: ID!) { resumeSchedule(id: $id) { paused } }`, { id: reportSchedule }))).toEqual(['FORBIDDEN']);
    expect(await audited(since, 'schedule.resume')).toBe(true);
    expect((await scheduleOf(reportSchedule)).paused).toBe(true);
    expect((await mia.gql(`mutation ($id: ID!) { resumeSchedule(id: $id) { paused } }`, { id: reportSchedule })).resumeSchedule.paused).toBe(false);
  });

  it('… nor delete it', async () => {
    const since = new Date();
    expect(codes(await oscar.raw(`mutation ($id: ID!) { deleteSchedule(id: $id) }`, { id: reportSchedule }))).toEqual(['FORBIDDEN']);
    expect(await audited(since, 'schedule.delete')).toBe(true);
    expect((await scheduleOf(reportSchedule)).id).toBe(reportSchedule);
  });

  it('a viewer of the owning team may not change it either (writing roles only); a member and an admin may', async () => {
    expect(codes(await vic.raw(`mutation ($id: ID!) { pauseSchedule(id: $id) { paused } }`, { id: reportSchedule }))).toEqual(['FORBIDDEN']);
    const changed = await mia.gql(`mutation ($id: ID!) { updateSchedule(id: $id, input: { name: "yearly" }) { id } }`, { id: reportSchedule });
    expect(changed.updateSchedule.id).toBe(reportSchedule);
    const byAdmin = await t.api.gql(`mutation ($id: ID!) { updateSchedule(id: $id, input: { catchUpLimit: 3 }) { id } }`, { id: reportSchedule });
    expect(byAdmin.updateSchedule.id).toBe(reportSchedule);
  });

  it('a member may not schedule another team’s workflow (its next version would run on the schedule’s grants)', async () => {
    await oscar.gql(PUBLISH, {
      s: JSON.stringify({ name: 'lab-flow', domain: 'production', tasks: [{ name: 'say', module: 'test/echo', pool: 'parked' }] }),
    });
    const since = new Date();
    const r = await mia.raw(SCHEDULE, { input: { workflow: 'lab-flow', cron: '0 0 1 1 *' } });
    expect(codes(r)).toEqual(['FORBIDDEN']);
    expect(r.errors?.[0]?.message).toMatch(/workflow "lab-flow" belongs to team "lab"/);
    expect(await audited(since, 'schedule.create')).toBe(true);
    expect(codes(await oscar.raw(SCHEDULE, { input: { workflow: 'prod-report', cron: '0 0 1 1 *', team: 'prod' } }))).toEqual(['FORBIDDEN']);
    expect((await t.api.gql(`{ schedules(workflow: "lab-flow") { id } }`)).schedules).toEqual([]);
  });

  it('the CLI names the owner: `schedule create --team` of a team one is not in is refused', async () => {
    const refused = await runCli({ url: t.url, token: oscar.token }, ['schedule', 'create', 'lab-flow', '--cron', '0 0 1 1 *', '--team', 'prod']);
    expect(refused.code).not.toBe(0);
    expect(refused.stderr).toMatch(/not a member of a team "prod"/);
    const made = await runCli({ url: t.url, token: oscar.token }, ['schedule', 'create', 'lab-flow', '--cron', '0 0 1 1 *', '--team', 'lab', '--paused']);
    expect(made.stdout).toMatch(/team lab/);
  });
});

describe('leak 3: a workflow belongs to its team', () => {
  it('another team’s member with a production grant may not publish a new version of it (refused, audited, unchanged)', async () => {
    const since = new Date();
    const r = await oscar.raw(PUBLISH, { s: reportSpec({ description: 'oscar was here' }) });
    expect(codes(r)).toEqual(['FORBIDDEN']);
    expect(r.errors?.[0]?.message).toMatch(/Workflow "prod-report" belongs to team "prod"/);
    expect(await audited(since, 'workflow.publish')).toBe(true);
    const { workflow } = await t.api.gql(`{ workflow(name: "prod-report") { description latestVersion { version } } }`);
    expect(workflow).toEqual({ description: '', latestVersion: { version: 1 } });
  });

  it('… nor move it out of its domain, nor claim it for his team; a teamless member’s own workflow is his alone', async () => {
    expect(codes(await oscar.raw(PUBLISH, { s: reportSpec({ domain: 'experimentation' }) }))).toEqual(['FORBIDDEN']);
    expect(codes(await oscar.raw(PUBLISH, { s: reportSpec(), team: 'lab' }))).toEqual(['FORBIDDEN']);
    expect(codes(await vic.raw(PUBLISH, { s: reportSpec({ description: 'viewer' }) }))).toEqual(['FORBIDDEN']);
    const own = JSON.stringify({ name: 'nora-own', tasks: [{ name: 'say', module: 'test/echo', pool: 'parked' }] });
    expect((await nora.gql(PUBLISH, { s: own })).createWorkflow.workflow.team).toBeNull();
    const changed = JSON.stringify({ name: 'nora-own', description: 'v2', tasks: [{ name: 'say', module: 'test/echo', pool: 'parked' }] });
    expect(codes(await oscar.raw(PUBLISH, { s: changed }))).toEqual(['FORBIDDEN']);
    expect((await nora.gql(PUBLISH, { s: changed })).createWorkflow.version.version).toBe(2);
  });

  it('the chained attack: his version is refused, so the other team’s schedule keeps firing only its own', async () => {
    const chained = await schedule(mia, { workflow: 'prod-report', cron: '* * * * * *', name: 'every-second', overlap: 'ALLOW' });
    const attack = await oscar.raw(PUBLISH, {
      s: reportSpec({ tasks: [{ name: 'say', module: 'test/echo', pool: 'parked', parameters: { message: 'oscar-code' } }] }),
    });
    expect(codes(attack)).toEqual(['FORBIDDEN']);
    const fired = await until(
      () => scheduleOf(chained),
      (s) => s.fires.some((f: any) => f.outcome === 'STARTED'),
    );
    await mia.gql(`mutation ($id: ID!) { pauseSchedule(id: $id) { paused } }`, { id: chained });
    const runIds = fired.fires.filter((f: any) => f.run).map((f: any) => f.run.id);
    expect(runIds.length).toBeGreaterThan(0);
    for (const id of runIds) {
      const { run } = await mia.gql(`query ($id: ID!) { run(id: $id) { workflowVersion { version } tasks { parameters } } }`, { id });
      expect(run.workflowVersion.version).toBe(1);
      expect(has(run, 'oscar-code')).toBe(false);
    }
  });

  it('a schedule whose workflow now belongs to another team fires nothing (audited), saying why', async () => {
    await t.createWorkflow({ name: 'handed-over', domain: 'production', tasks: [{ name: 'say', module: 'test/echo', pool: 'parked' }] });
    await t.api.gql(PUBLISH, {
      s: JSON.stringify({ name: 'handed-over', domain: 'production', tasks: [{ name: 'say', module: 'test/echo', pool: 'parked' }] }),
      team: 'prod',
    });
    const id = await schedule(mia, { workflow: 'handed-over', cron: '* * * * * *', paused: true });
    // An admin hands the workflow to lab: its next versions are lab's, so prod's schedule must not run them.
    await t.api.gql(PUBLISH, {
      s: JSON.stringify({ name: 'handed-over', domain: 'production', tasks: [{ name: 'say', module: 'test/echo', pool: 'parked' }] }),
      team: 'lab',
    });
    const since = new Date();
    await mia.gql(`mutation ($id: ID!) { resumeSchedule(id: $id) { paused } }`, { id });
    await until(
      () => scheduleOf(id),
      (x) => x.fires.some((f: any) => f.outcome !== 'PENDING'),
    );
    await mia.gql(`mutation ($id: ID!) { pauseSchedule(id: $id) { paused } }`, { id });
    // A fire claimed before the pause (every second) is still finished: read them once none is pending.
    const s = await until(
      () => scheduleOf(id),
      (x) => x.fires.every((f: any) => f.outcome !== 'PENDING'),
    );
    expect(s.fires.every((f: any) => f.outcome === 'FAILED' && !f.run)).toBe(true);
    expect(s.fires[0].message).toMatch(/workflow "handed-over" belongs to team "lab", and this schedule to team "prod"/);
    expect(await audited(since, 'schedule.fire')).toBe(true);
  });
});

describe('leak 2: a hot cluster runs only its owners’ tasks', () => {
  const createCluster = (api: ApiClient, name: string, extra = '') =>
    api.raw(`mutation { createHotCluster(name: "${name}", executor: "noop", pool: "${name}"${extra}) { name team { name } idleTimeoutMs } }`);
  const uses = (name: string) => ({
    name: `uses-${name}`,
    tasks: [{ name: 'warm', module: 'test/echo', hotCluster: 'prod-warm', parameters: { steps: 1 } }],
  });
  let miaRun = '';

  beforeAll(async () => {
    const made = await createCluster(mia, 'prod-warm');
    if (made.errors) throw new Error(JSON.stringify(made.errors));
    await mia.gql(PUBLISH, { s: JSON.stringify(uses('prod')) });
    await oscar.gql(PUBLISH, { s: JSON.stringify(uses('lab')) });
    await oscar.gql(PUBLISH, { s: JSON.stringify({ name: 'lab-plain', tasks: [{ name: 'say', module: 'test/echo', pool: 'parked' }] }) });
    miaRun = (await mia.gql(`mutation { startRun(workflow: "uses-prod") { id } }`)).startRun.id;
  });

  it('its team’s member runs on it', () => {
    expect(miaRun).toBeTruthy();
  });

  it('another team’s member may not start a run on it (startRun hotCluster), refused and audited', async () => {
    const since = new Date();
    const r = await oscar.raw(`mutation { startRun(workflow: "lab-plain", hotCluster: "prod-warm") { id } }`);
    expect(codes(r)).toEqual(['FORBIDDEN']);
    expect(r.errors?.[0]?.message).toMatch(/Hot cluster prod-warm belongs to team "prod"; only its members \(or an admin\) may run tasks on it/);
    expect(await audited(since, 'hotCluster.use')).toBe(true);
  });

  it('… nor through a node of his own workflow that names it', async () => {
    expect(codes(await oscar.raw(`mutation { startRun(workflow: "uses-lab") { id } }`))).toEqual(['FORBIDDEN']);
  });

  it('… nor by cloning or rerunning a run that used it', async () => {
    expect(codes(await oscar.raw(`mutation ($id: ID!) { cloneRun(id: $id) { id } }`, { id: miaRun }))).toEqual(['FORBIDDEN']);
    expect(codes(await oscar.raw(`mutation ($id: ID!) { rerunRun(id: $id, from: ALL) { id } }`, { id: miaRun }))).toEqual(['FORBIDDEN']);
  });

  it('… nor by nesting a workflow that names it', async () => {
    await oscar.gql(PUBLISH, { s: JSON.stringify({ name: 'lab-nests', tasks: [{ name: 'inner', workflow: 'uses-prod' }] }) });
    expect(codes(await oscar.raw(`mutation { startRun(workflow: "lab-nests") { id } }`))).toEqual(['FORBIDDEN']);
  });

  it('… nor through a schedule of his team', async () => {
    const id = await schedule(oscar, { workflow: 'uses-lab', cron: '* * * * * *' });
    const s = await until(
      () => scheduleOf(id),
      (x) => x.fires.some((f: any) => f.outcome === 'FAILED'),
    );
    await oscar.gql(`mutation ($id: ID!) { deleteSchedule(id: $id) }`, { id });
    // An every-second schedule on a loaded machine may find two fire times due at one tick: the older is recorded
    // SKIPPED_MISSED by its catch-up policy, which starts nothing either. No fire may have started a run.
    const done = s.fires.filter((f: any) => f.outcome !== 'PENDING');
    expect(done.every((f: any) => (f.outcome === 'FAILED' || f.outcome === 'SKIPPED_MISSED') && !f.run)).toBe(true);
    expect(done.find((f: any) => f.outcome === 'FAILED').message).toMatch(/Hot cluster prod-warm belongs to team "prod"/);
  });

  it('a huge idle timeout is refused with the allowed range; the maximum itself is accepted', async () => {
    const huge = await createCluster(mia, 'forever', ', idleTimeoutSeconds: 2000000000');
    expect(codes(huge)).toEqual(['BAD_USER_INPUT']);
    expect(huge.errors?.[0]?.message).toMatch(/from 1 to 86400 \(24 h, ATELIER_HOT_CLUSTER_MAX_IDLE_SECONDS\)/);
    expect(codes(await createCluster(mia, 'too-short', ', idleTimeoutSeconds: 0'))).toEqual(['BAD_USER_INPUT']);
    const day = await createCluster(mia, 'a-day', ', idleTimeoutSeconds: 86400');
    expect(day.data.createHotCluster.idleTimeoutMs).toBe(86_400_000);
  });

  it('a member may not create a cluster on a pool another owner’s live cluster holds', async () => {
    const since = new Date();
    const r = await oscar.raw(`mutation { createHotCluster(name: "lab-warm", executor: "noop", pool: "prod-warm") { name } }`);
    expect(codes(r)).toEqual(['FORBIDDEN']);
    expect(r.errors?.[0]?.message).toMatch(/pool prod-warm is held by hot cluster prod-warm/);
    expect(await audited(since, 'hotCluster.create')).toBe(true);
  });

  it('the operator bounds idle timeouts and opens pools per team (ATELIER_HOT_CLUSTER_MAX_IDLE_SECONDS, ATELIER_HOT_CLUSTER_POOLS)', () => {
    const config = loadConfig({ ATELIER_HOT_CLUSTER_MAX_IDLE_SECONDS: '3600', ATELIER_HOT_CLUSTER_POOLS: 'gpu-a100:vision+nlp,local' });
    expect(config.hotClusterMaxIdleMs).toBe(3_600_000);
    expect(config.hotClusterPools).toEqual({ 'gpu-a100': ['vision', 'nlp'], local: '*' });
    expect(loadConfig({}).hotClusterMaxIdleMs).toBe(86_400_000);
    expect(() => loadConfig({ ATELIER_HOT_CLUSTER_POOLS: 'gpu a100' })).toThrow(/ATELIER_HOT_CLUSTER_POOLS/);
  });
});

describe('leak 4: moving a workflow’s domain does not open what was stored under the old one', () => {
  let moving = '';
  let prodRun = '';
  const movingSpec = (domain: string, password = DEFAULT_SECRET) =>
    JSON.stringify({
      name: 'moving',
      domain,
      parameters: { password: { default: password } },
      tasks: [{ name: 'load', module: 'test/echo', pool: 'parked', parameters: { message: '${params.password}' } }],
    });

  beforeAll(async () => {
    await mia.gql(PUBLISH, { s: movingSpec('production') });
    moving = await schedule(mia, { workflow: 'moving', cron: '0 0 1 1 *', parameters: { password: SECRET }, paused: true });
    prodRun = (await mia.gql(`mutation { startRun(workflow: "moving") { id } }`)).startRun.id;
    // Its team moves it to experimentation, with a new default.
    await mia.gql(PUBLISH, { s: movingSpec('experimentation', 'nothing-secret') });
  });

  it('a schedule’s parameters set while it was in production stay production data', async () => {
    const r = await nora.raw(`query ($id: ID!) { schedule(id: $id) { name parameters } }`, { id: moving });
    expect(codes(r)).toContain('FORBIDDEN');
    expect(has(r, SECRET)).toBe(false);
    expect(r.data.schedule.name).toBeTruthy();
    expect((await mia.gql(`query ($id: ID!) { schedule(id: $id) { parameters } }`, { id: moving })).schedule.parameters).toEqual({ password: SECRET });
  });

  it('the older version’s spec stays production data; the new one is experimentation’s', async () => {
    const r = await nora.raw(`{ workflow(name: "moving") { versions { version spec } } }`);
    expect(has(r, DEFAULT_SECRET)).toBe(false);
    const versions = r.data.workflow.versions;
    expect(versions.find((v: any) => v.version === 2).spec.parameters.password.default).toBe('nothing-secret');
    expect(versions.find((v: any) => v.version === 1).spec).toBeNull();
  });

  it('… so the older version may not be started (nor previewed) in experimentation without the production grant', async () => {
    expect(codes(await nora.raw(`mutation { startRun(workflow: "moving", version: 1) { id } }`))).toEqual(['FORBIDDEN']);
    expect(codes(await nora.raw(`mutation { startRun(workflow: "moving", version: 1, domain: experimentation) { id } }`))).toEqual(['FORBIDDEN']);
    expect(codes(await nora.raw(`{ cachePreview(workflow: "moving", version: 1) { node } }`))).toEqual(['FORBIDDEN']);
  });

  it('a run started in production keeps its domain, so its parameters stay guarded', async () => {
    const r = await nora.raw(`query ($id: ID!) { run(id: $id) { domain parameters } }`, { id: prodRun });
    expect(r.data.run.domain).toBe('production');
    expect(has(r, DEFAULT_SECRET)).toBe(false);
  });

  it('changing the schedule takes the grants of both domains; new parameters are the new domain’s data', async () => {
    const r = await mia.gql(`mutation ($id: ID!) { updateSchedule(id: $id, input: { parameters: { password: "public-now" } }) { id } }`, { id: moving });
    expect(r.updateSchedule.id).toBe(moving);
    const read = await nora.gql(`query ($id: ID!) { schedule(id: $id) { parameters } }`, { id: moving });
    expect(read.schedule.parameters).toEqual({ password: 'public-now' });
  });
});
