// `atelier cache stats|explain|preview|invalidate`, run as a user would against a real control plane.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestApp, type TestApp } from '../harness/app';
import { runCli } from '../harness/cli';
import { RUN_EVENTS } from '../harness/client';

const terminal = (e: any) => e.runEvents.__typename === 'RunStatusEvent' && ['SUCCEEDED', 'FAILED', 'CANCELLED'].includes(e.runEvents.runStatus);

describe('atelier cache', () => {
  let t: TestApp;
  const runIds: string[] = [];
  beforeAll(async () => {
    t = await startTestApp();
    await t.publishFixture('keyed');
    await t.createWorkflow({
      name: 'twice',
      parameters: { n: { default: 1 } },
      tasks: [{ name: 'step', module: 'test/keyed', parameters: { n: '${params.n}' } }],
    });
    for (const n of [1, 1, 2]) {
      const { startRun } = await t.api.gql(`mutation ($p: JSON) { startRun(workflow: "twice", parameters: $p) { id } }`, { p: { n } });
      await t.api.subscribe(RUN_EVENTS, { runId: startRun.id }, terminal);
      runIds.push(startRun.id);
    }
  });
  afterAll(() => t?.stop());

  const cli = (args: string[]) => runCli({ url: t.url, token: t.app.adminToken }, args);

  it('prints the hit rate and savings by module and by team', async () => {
    const byModule = await cli(['cache', 'stats', '--since', '1h']);
    expect(byModule.code, byModule.stderr).toBe(0);
    // The keyed fixture runs for well under a minute: the saving reads in seconds, never "0 min".
    expect(byModule.stdout).toMatch(/test\/keyed\s+33%\s+1\s+2\s+[\d.]+ s$/m);
    const byTeam = await cli(['cache', 'stats', '--by', 'team']);
    // the team owning the workflow, as `atelier costs` names it (this one's is owned by none)
    expect(byTeam.stdout).toMatch(/^\(no team\)\s+33%/m);
  });

  it('shows a cached run as served from cache when watched, live and in the summary', async () => {
    const out = await cli(['run', 'start', 'twice', '--param', 'n=1', '--watch', '--plain']);
    expect(out.code, out.stderr).toBe(0);
    expect(out.stdout).toMatch(/^\[step\] SUCCEEDED from cache \(the result of task [0-9a-f-]{36} of run [0-9a-f-]{36} \(saved [\d.]+s\)\)$/m);
    expect(out.stdout).toMatch(/^ {2}step\s+SUCCEEDED\s+cached$/m);
    expect(out.stdout).toMatch(/\(1 of 1 task served from cache\)/);
    const watched = await cli(['run', 'watch', runIds[1]!, '--plain']);
    expect(watched.stdout).toMatch(/^ {2}step\s+SUCCEEDED\s+cached$/m);
  });

  it('explains a miss by run and node, naming the parameter', async () => {
    const out = await cli(['cache', 'explain', runIds[2]!, 'step']);
    expect(out.code, out.stderr).toBe(0);
    expect(out.stdout).toContain('parameter n has a different value');
    const unknown = await cli(['cache', 'explain', runIds[2]!, 'nope']);
    expect(unknown.code).not.toBe(0);
    expect(unknown.stderr).toContain('its nodes are: step');
  });

  it('previews a launch, then invalidates the module and the preview says miss', async () => {
    expect((await cli(['cache', 'preview', 'twice', '-p', 'n=2'])).stdout).toContain('1 of 1 tasks would be served from cache');
    expect((await cli(['cache', 'invalidate', '--module', 'test/keyed'])).stdout).toContain('dropped 2 cache entries');
    expect((await cli(['cache', 'preview', 'twice', '-p', 'n=2'])).stdout).toContain('0 of 1 tasks would be served from cache');
  });
});
