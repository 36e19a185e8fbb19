// The CLI's change commands as a user runs them against a real control plane: `schedule update`, `trigger update`,
// `trigger rotate` and `monitor update` change what they are given and keep the rest; a command given nothing to
// change, or a change the server refuses, says what to do, exits 1 and changes nothing.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { signHook } from '../../server/triggers/hooks';
import { startTestApp, type TestApp } from '../harness/app';
import { type CliResult, runCli, showCli } from '../harness/cli';

let t: TestApp;
let alice = '';
const cli = (args: string[], token = t.app.adminToken) => runCli({ url: t.url, token }, args);

function refused(r: CliResult, message: RegExp) {
  expect(r.code, showCli(r)).toBe(1);
  expect(r.stderr).toMatch(message);
  expect(r.stderr).not.toMatch(/\n\s+at |Variable "\$/);
}

function ok(r: CliResult): string {
  expect(r.code, showCli(r)).toBe(0);
  return r.stdout;
}

beforeAll(async () => {
  t = await startTestApp({ ATELIER_MONITOR_EVAL_MS: '3600000' });
  await t.publishFixture('echo');
  await t.createWorkflow({
    name: 'report',
    parameters: { greeting: { default: 'hi' }, count: { default: 1 } },
    tasks: [{ name: 'say', module: 'test/echo', pool: 'parked', parameters: { message: '${params.greeting}' } }],
  });
  alice = (await t.user('alice')).token;
  await t.team('ml', ['alice'], ['ml']);
  await t.api.gql(
    `mutation { createDataset(name: "ml/features", domain: experimentation, columns: [{ name: "region", type: "string" }], digest: "sha256:${'e'.repeat(64)}") { id } }`,
  );
}, 60_000);
afterAll(() => t?.stop());

describe('atelier schedule update', () => {
  it('changes the cron, zone, parameters and window it is given and keeps the rest', async () => {
    const id = ok(
      await cli([
        'schedule',
        'create',
        'report',
        '--cron',
        '0 6 * * *',
        '--param',
        'greeting=salut',
        '--overlap',
        'allow',
        '--end',
        '2100-01-01T00:00:00Z',
        '-q',
      ]),
    ).trim();
    const updated = ok(await cli(['schedule', 'update', id, '--cron', '30 7 * * 1-5', '--tz', 'Europe/Paris', '--param', 'greeting=bonjour', '--end', 'none']));
    expect(updated).toContain(`updated schedule ${id}  report  "0 6 * * *"  30 7 * * 1-5 (Europe/Paris)  catch-up skip, overlap allow`);
    const { schedule } = await t.api.gql(`query ($id: ID!) { schedule(id: $id) { cron timeZone parameters overlap endAt } }`, { id });
    expect(schedule).toEqual({ cron: '30 7 * * 1-5', timeZone: 'Europe/Paris', parameters: { greeting: 'bonjour' }, overlap: 'ALLOW', endAt: null });
  });

  it('refuses nothing to change, and a parameter the workflow would refuse, changing nothing', async () => {
    const id = ok(await cli(['schedule', 'create', 'report', '--cron', '0 5 * * *', '--param', 'count=2', '-q'])).trim();
    refused(await cli(['schedule', 'update', id]), /^error: nothing to change: give at least one of --cron, --tz, --param, .*`atelier schedule update --help`/);
    refused(
      await cli(['schedule', 'update', id, '--param', 'colour=blue']),
      /^error \[BAD_USER_INPUT\]: The schedule's parameters do not fit workflow "report": Unknown run parameter "colour"; workflow "report" declares: count, greeting/,
    );
    refused(await cli(['schedule', 'update', id, '--end', 'soon']), /expected an ISO 8601 date-time such as 2030-01-31T09:00:00Z, got "soon"/);
    refused(await cli(['schedule', 'update', '00000000-0000-0000-0000-000000000000', '--cron', '0 1 * * *']), /^error \[NOT_FOUND\]: /);
    const { schedule } = await t.api.gql(`query ($id: ID!) { schedule(id: $id) { cron parameters } }`, { id });
    expect(schedule).toEqual({ cron: '0 5 * * *', parameters: { count: 2 } });
  });
});

describe('atelier trigger update and rotate', () => {
  it('changes a trigger’s map, rate and overlap, and rotates an http trigger’s secret so only the new one signs', async () => {
    const created = ok(await cli(['trigger', 'create', 'report', 'from-ci', '--on', 'http', '--map', 'greeting=/why']));
    const first = /secret \(shown once; sign hooks with it\): (\S+)/.exec(created)![1]!;

    const updated = ok(await cli(['trigger', 'update', 'from-ci', '--map', 'greeting=/reason', '--max-runs-per-minute', '7', '--overlap', 'skip']));
    expect(updated).toContain('"from-ci"  http /hooks/trigger/from-ci  overlap skip, at most 7 runs/min');
    expect(updated).toContain('map greeting←/reason');

    const rotated = ok(await cli(['trigger', 'rotate', 'from-ci']));
    expect(rotated).toMatch(/^rotated trigger \S+ {2}report {2}"from-ci"/);
    const second = /secret \(shown once; sign hooks with it from now on\): (trsec_\S+)/.exec(rotated)![1]!;
    expect(second).not.toBe(first);

    const hook = (secret: string, delivery: string) => {
      const body = JSON.stringify({ reason: 'release' });
      const timestamp = String(Math.floor(Date.now() / 1000));
      return fetch(`${t.url}/hooks/trigger/from-ci`, {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          'x-atelier-signature': signHook(secret, timestamp, delivery, body),
          'x-atelier-timestamp': timestamp,
          'x-atelier-delivery': delivery,
        },
        body,
      });
    };
    expect((await hook(first, 'old-secret')).status).toBe(401);
    expect((await hook(second, 'new-secret')).status).toBe(202);
  });

  it('refuses nothing to change, a bad map, and rotating a trigger that has no secret, changing nothing', async () => {
    await t.createWorkflow({ name: 'publish', tasks: [{ name: 'say', module: 'test/echo', pool: 'parked', parameters: { message: 'done' } }] });
    ok(await cli(['trigger', 'create', 'report', 'after-report', '--on', 'run-succeeded', '--source', 'publish']));
    refused(
      await cli(['trigger', 'update', 'after-report']),
      /^error: nothing to change: give at least one of --param, --map, --overlap, --priority, --max-runs-per-minute/,
    );
    refused(await cli(['trigger', 'update', 'after-report', '--map', 'greeting']), /expected PARAM=\/json\/pointer, got "greeting"/);
    refused(await cli(['trigger', 'update', 'after-report', '--priority', '50']), /^error \[BAD_USER_INPUT\]: .*priority/i);
    refused(
      await cli(['trigger', 'rotate', 'after-report']),
      /^error \[BAD_USER_INPUT\]: Trigger "after-report" is RUN_SUCCEEDED: only HTTP triggers have a secret/,
    );
    refused(await cli(['trigger', 'rotate', 'no-such-trigger']), /^error \[NOT_FOUND\]: .*no-such-trigger/);
    const { trigger } = await t.api.gql(`{ trigger(id: "after-report") { priority parameterMap } }`);
    expect(trigger).toEqual({ priority: 0, parameterMap: {} });
  });
});

describe('atelier monitor update', () => {
  it('replaces the rules and interval it is given, keeps the rest, and records the reason', async () => {
    const created = ok(
      await cli(['monitor', 'create', 'latency', 'dataset:ml/features', 'latency', '--rule', '{"id":"slow","kind":"THRESHOLD","above":100}'], alice),
    );
    const id = /created monitor (\S+)/.exec(created)![1]!;
    const updated = ok(
      await cli(['monitor', 'update', id, '--rule', '{"id":"slower","kind":"THRESHOLD","above":150}', '--every', '300', '--reason', 'new SLO'], alice),
    );
    expect(updated).toContain(`updated monitor ${id}  "latency"  dataset ml/features  latency  rules slower:threshold  every 300s  team ml`);
    expect(ok(await cli(['monitor', 'show', id], alice))).toMatch(/UPDATED\s+alice\s+new SLO/);

    refused(
      await cli(['monitor', 'update', id, '--reason', 'just because'], alice),
      /^error: nothing to change: give at least one of --name, --metric, --rule, --action, --every \(/,
    );
    refused(await cli(['monitor', 'update', id, '--rule', 'above 100'], alice), /expected a JSON object for a rule, e\.g\./);
    refused(
      await cli(['monitor', 'update', id, '--rule', '{"kind":"SOMETIMES"}'], alice),
      /^error \[BAD_USER_INPUT\]: A value you gave was refused:\n {2}rules\.0\.kind: "SOMETIMES" is not a MonitorRuleKind: use one of DRIFT, REGRESSION, THRESHOLD$/m,
    );
    expect(ok(await cli(['monitor', 'show', id], alice))).toContain('rules slower:threshold  every 300s');
  });
});
