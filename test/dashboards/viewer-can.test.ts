// `viewerCan` agrees with the mutations (issue 16, item 6): for an admin, a member of no team and a viewer, each
// answer is "allowed" exactly when the mutation then succeeds, and a refusal's reason is the mutation's own error
// message, word for word. Asking writes nothing to the audit log. API only (the browser side is daily-use.test.ts).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestApp, type TestApp } from '../harness/app';
import type { ApiClient } from '../harness/client';

let t: TestApp;
let runId: string;
let scheduleId: string;
const clients: Record<string, ApiClient> = {};

const permission = '{ allowed reason }';

async function waitForRun(id: string) {
  for (;;) {
    const { run } = await t.api.gql(`query ($id: ID!) { run(id: $id) { status } }`, { id });
    if (!['QUEUED', 'RUNNING'].includes(run.status)) return;
    await new Promise((r) => setTimeout(r, 200));
  }
}

/** The mutation's outcome: null when it succeeded, else its first error's message. */
async function attempt(client: ApiClient, query: string, variables: Record<string, unknown> = {}): Promise<string | null> {
  const r = await client.raw(query, variables);
  return r.errors?.[0]?.message ?? null;
}

describe('viewerCan answers what the mutation then does', () => {
  beforeAll(async () => {
    t = await startTestApp();
    clients.admin = t.api;
    clients.member = await t.user('max');
    clients.viewer = await t.user('vera', 'viewer');
    await t.publishFixture('echo');
    await t.api.gql(`mutation { setModuleTag(module: "test/echo", tag: "beta", version: "1") { tag } }`);
    await t.createWorkflow({ name: 'hello', tasks: [{ name: 'greet', module: 'test/echo' }] });
    runId = (await t.api.gql(`mutation { startRun(workflow: "hello") { id } }`)).startRun.id;
    await waitForRun(runId);
    scheduleId = (await t.api.gql(`mutation { createSchedule(input: { workflow: "hello", cron: "0 6 * * *", paused: true }) { id } }`)).createSchedule.id;
  }, 300_000);
  afterAll(async () => {
    await t?.stop();
  });

  const cases = [
    {
      action: 'Run.viewerCan.clone',
      ask: `query ($id: ID!) { run(id: $id) { viewerCan { clone ${permission} } } }`,
      pick: (d: any) => d.run.viewerCan.clone,
      act: `mutation ($id: ID!) { cloneRun(id: $id) { id } }`,
    },
    {
      action: 'Run.viewerCan.rerun',
      ask: `query ($id: ID!) { run(id: $id) { viewerCan { rerun ${permission} } } }`,
      pick: (d: any) => d.run.viewerCan.rerun,
      act: `mutation ($id: ID!) { rerunRun(id: $id, from: ALL) { id } }`,
    },
    {
      action: 'Run.viewerCan.cancel (an ended run)',
      ask: `query ($id: ID!) { run(id: $id) { viewerCan { cancel ${permission} } } }`,
      pick: (d: any) => d.run.viewerCan.cancel,
      act: `mutation ($id: ID!) { cancelRun(id: $id) { id } }`,
    },
    {
      action: 'Workflow.viewerCan.start',
      ask: `{ workflow(name: "hello") { viewerCan { start ${permission} } } }`,
      pick: (d: any) => d.workflow.viewerCan.start,
      act: `mutation { startRun(workflow: "hello") { id } }`,
    },
    {
      action: 'ModuleTag.viewerCan.rollback (no earlier version)',
      ask: `{ module(name: "test/echo") { tags { tag viewerCan { rollback ${permission} } } } }`,
      pick: (d: any) => d.module.tags.find((x: any) => x.tag === 'beta').viewerCan.rollback,
      act: `mutation { rollbackModuleTag(module: "test/echo", tag: "beta") { tag } }`,
    },
    {
      action: 'Module.viewerCan.promote',
      ask: `{ module(name: "test/echo") { viewerCan { promote ${permission} } } }`,
      pick: (d: any) => d.module.viewerCan.promote,
      act: `mutation { setModuleTag(module: "test/echo", tag: "beta", version: "1") { tag } }`,
    },
    {
      action: 'Schedule.viewerCan.change',
      ask: `query ($id: ID!) { schedule(id: $id) { viewerCan { change ${permission} } } }`,
      pick: (d: any) => d.schedule.viewerCan.change,
      act: `mutation ($id: ID!) { pauseSchedule(id: $id) { id } }`,
      // one answer covers pause, resume, update and delete: it names them "change"
      same: (message: string) => message.replace('pause schedules', 'change schedules').replace(/may pause it\.$/, 'may change it.'),
    },
  ];

  for (const role of ['viewer', 'member', 'admin'] as const) {
    it.each(cases)(`$action for the ${role}`, async ({ ask, pick, act, ...c }) => {
      const client = clients[role]!;
      const variables = { id: ask.includes('schedule(') ? scheduleId : runId };
      const asked = pick(await client.gql(ask, variables));
      const failed = await attempt(client, act, variables);
      const outcome = failed && 'same' in c ? (c.same as (m: string) => string)(failed) : failed;
      expect({ allowed: asked.allowed, reason: asked.reason }).toEqual({ allowed: outcome === null, reason: outcome });
    });
  }

  it('audits nothing when asked', async () => {
    const audit = async () =>
      (await t.api.gql(`query ($s: DateTime!) { auditEvents(since: $s, limit: 1000) { id } }`, { s: new Date(0).toISOString() })).auditEvents.length;
    const before = await audit();
    for (const c of cases) for (const client of Object.values(clients)) await client.gql(c.ask, { id: c.ask.includes('schedule(') ? scheduleId : runId });
    expect(await audit()).toBe(before);
  });
});
