// A full disk under the embedded database (PGlite in ATELIER_DATA_DIR on a 128 MiB tmpfs, mounted here as root;
// skipped where mounting is not allowed). Filled to less than the reserve the database keeps (server/db/disk-reserve.ts)
// while the control plane runs: every write is refused with a typed error that says the disk is full and what to do
// (never a 500, never a hang: past the reserve a WAL segment PGlite cannot create is a PANIC that holds the process for
// good), reads go on, nothing committed is lost, and once space is freed the same writes succeed and runs finish.
import { execFileSync } from 'node:child_process';
import { mkdtemp, rm, statfs } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DISK_RESERVE_BYTES } from '../../server/db/disk-reserve';
import { until } from '../batch/until';
import { startTestApp, type TestApp } from '../harness/app';
import { seedEmbeddedDatabase } from '../harness/pglite-template';
import { mountTmpfs, unmountTmpfs } from '../harness/tmpfs';

const mounted = mountTmpfs('db-disk-full', '128m');

describe.skipIf(!mounted)('a full disk under the embedded database', () => {
  let t: TestApp;
  let objects: string;
  const filler = path.join(mounted ?? '', 'filler');
  beforeAll(async () => {
    await seedEmbeddedDatabase(mounted!);
    objects = await mkdtemp(path.join(os.tmpdir(), 'atelier-db-disk-full-objects-'));
    t = await startTestApp({ ATELIER_DATA_DIR: mounted!, ATELIER_OBJECTS_DIR: objects });
    await t.publishFixture('sleep');
  }, 120_000);
  afterAll(async () => {
    await t?.stop();
    await unmountTmpfs(mounted);
    await rm(objects, { recursive: true, force: true });
  });

  const spec = (name: string) => ({ name, tasks: [{ name: 'nap', module: 'test/sleep', executor: 'noop', parameters: { ms: 0 } }] });
  const create = (name: string) => t.api.raw(`mutation ($spec: String!) { createWorkflow(spec: $spec) { created } }`, { spec: JSON.stringify(spec(name)) });
  const runStatus = async (id: string) => (await t.api.gql(`query ($id: ID!) { run(id: $id) { status } }`, { id })).run?.status;

  it('refuses writes saying the disk is full, keeps serving reads and what was committed, and takes writes once space is freed', async () => {
    expect((await create('kept')).data?.createWorkflow.created).toBe(true);
    const { startRun } = await t.api.gql(`mutation { startRun(workflow: "kept") { id } }`);
    await until('the run before the disk filled to succeed', async () => (await runStatus(startRun.id)) === 'SUCCEEDED');

    // Less free than the reserve: half of it left.
    const { bavail, bsize } = await statfs(mounted!);
    execFileSync('fallocate', ['-l', String(bavail * bsize - DISK_RESERVE_BYTES / 2), filler]);
    // Writes go on until the control plane sees the disk (it looks twice a second); each is taken or refused, cleanly.
    let n = 0;
    const refused = await until('a write to be refused', async () => {
      const answer = await create(`during-${n++}`);
      if (answer.data?.createWorkflow.created) return undefined;
      return answer;
    });
    expect(refused.errors?.[0]?.extensions?.code, JSON.stringify(refused)).toBe('UNAVAILABLE');
    expect(refused.errors?.[0]?.message).toMatch(/database is out of disk space.*frees space/i);
    // Every write now is refused the same way, and the server keeps answering.
    for (let i = 0; i < 20; i++) {
      const again = await t.api.raw(`mutation { startRun(workflow: "kept") { id } }`);
      expect(again.errors?.[0]?.extensions?.code, JSON.stringify(again)).toBe('UNAVAILABLE');
    }
    const { workflow } = await t.api.gql(`{ workflow(name: "kept") { name } }`);
    expect(workflow).toEqual({ name: 'kept' });
    expect(await runStatus(startRun.id)).toBe('SUCCEEDED');

    await rm(filler);
    await until('a write to be taken again', async () => (await create('after')).data?.createWorkflow.created);
    const { startRun: after } = await t.api.gql(`mutation { startRun(workflow: "after") { id } }`);
    await until('a run started after to succeed', async () => (await runStatus(after.id)) === 'SUCCEEDED');
  }, 60_000);
});
