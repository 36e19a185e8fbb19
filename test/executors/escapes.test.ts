// A module in the default sandbox (bubblewrap) leaves nothing behind when its task is cancelled or times out, however
// its processes leave its process group or session (setsid, a daemon's double fork, nohup): the sandbox's pid
// namespace ends with its first process, and every process in it with that. (Opted out, ATELIER_MODULE_ISOLATION=none,
// only the process group is reached: docs/executors.md says so.) Processes are found by a marker in their command
// line in the host's /proc, which sees into every pid namespace.
import { randomUUID } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { probeIsolation } from '../../executors/local/sandbox';
import { until } from '../batch/until';
import { startTestApp, type TestApp } from '../harness/app';

const sandboxed = probeIsolation().kind === 'bwrap';
let t: TestApp;

/** The processes whose command line holds `marker`. */
function marked(marker: string): string[] {
  const found: string[] = [];
  for (const pid of readdirSync('/proc')) {
    if (!/^\d+$/.test(pid)) continue;
    try {
      const cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8').replaceAll('\0', ' ');
      if (cmdline.includes(marker)) found.push(`${pid}: ${cmdline}`);
    } catch {
      // ended meanwhile
    }
  }
  return found;
}

const RUN = `query ($id: ID!) { run(id: $id) { status } }`;

describe.skipIf(!sandboxed)('a sandboxed module leaves no process behind', () => {
  beforeAll(async () => {
    t = await startTestApp();
    await t.publishFixture('runaway');
  }, 120_000);
  afterAll(() => t?.stop());

  const escapes = async (name: string, end: (runId: string) => Promise<void>, timeoutSeconds?: number) => {
    const marker = `atelier-escape-${randomUUID()}`;
    const task = {
      name: 'wild',
      module: 'test/runaway',
      executor: 'local',
      parameters: { mode: 'escape', marker },
      ...(timeoutSeconds ? { timeoutSeconds } : {}),
    };
    await t.createWorkflow({ name, tasks: [task] });
    const { startRun } = await t.api.gql(`mutation ($w: String!) { startRun(workflow: $w) { id } }`, { w: name });
    await until('the escaped processes to start', async () => marked(marker).length >= 3, 30_000);
    await end(startRun.id);
    await until('every escaped process to end', async () => marked(marker).length === 0, 30_000);
    expect(marked(marker)).toEqual([]);
  };

  it('when its task is cancelled: setsid, a double fork and nohup all end', async () => {
    await escapes('escape-cancel', async (id) => {
      await t.api.gql(`mutation ($id: ID!) { cancelRun(id: $id) { status } }`, { id });
      await until('the run to be cancelled', async () => (await t.api.gql(RUN, { id })).run.status === 'CANCELLED');
    });
  }, 90_000);

  it('when its task times out: the same', async () => {
    await escapes(
      'escape-timeout',
      async (id) => {
        await until('the run to fail', async () => (await t.api.gql(RUN, { id })).run.status === 'FAILED', 30_000);
      },
      3,
    );
  }, 90_000);
});
