// Issue 22.1: a module sees only its own attempt folder. A hostile module (test/fixtures/modules/hostile) tries to
// read the admin token (walking up from its folder, and by the data directory's path), the database files, other
// tasks' folders, to write outside its folder, into the object store and the token, and to read the server's
// environment; each attempt is one case, asserted from the module's own report and from the host's side (nothing
// outside changed). Run on the embedded default and on a separate executor host process. Also: a module archive
// swapped in the object store after its first use is refused at unpack, never run.
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { cp, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLocalExecutor } from '../../executors/local';
import { packDirectory } from '../../server/artifacts/archive';
import { moduleIsolation } from '../../server/config';
import { fixturesDir, startTestApp, type TestApp } from '../harness/app';
import { type ExecutorProcess, startExecutorProcess } from '../harness/executor-process';
import { type NatsServer, startNats } from '../harness/nats';
import { makeTask } from '../plugins/host-harness';

const START = `mutation ($w: String!, $p: JSON) { startRun(workflow: $w, parameters: $p, refreshCache: true) { id } }`;
const RUN = `query ($id: ID!) { run(id: $id) { status tasks { node status reason message outputs logs { line } } } }`;
const SECRET_NAME = 'ATELIER_PROBE_SERVER_SECRET';
const SECRET = `s3cret-${Math.random().toString(36).slice(2)}`;

async function until<T>(probe: () => Promise<T | false | undefined>, what: string, ms = 120_000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const value = await probe();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

async function runToEnd(t: TestApp, workflow: string, parameters: Record<string, unknown> = {}) {
  const { startRun } = await t.api.gql(START, { w: workflow, p: parameters });
  return until(async () => {
    const { run } = await t.api.gql(RUN, { id: startRun.id });
    return ['SUCCEEDED', 'FAILED', 'CANCELLED'].includes(run.status) && run;
  }, `the run of ${workflow}`);
}

const sha256File = (file: string) => `sha256:${createHash('sha256').update(readFileSync(file)).digest('hex')}`;
const objectFile = (dataDir: string, digest: string) => path.join(dataDir, 'objects', 'sha256', digest.slice(7, 9), digest.slice(7));
const hostTmpLeftovers = () => readdirSync(os.tmpdir()).filter((name) => name.startsWith('atelier-pwned-'));

interface Setup {
  t: TestApp;
  executorDataDir?: string;
  stop(): Promise<void>;
}

function hostileSuite(name: string, setup: () => Promise<Setup>) {
  describe(`a hostile module is refused everything outside its folder (${name})`, () => {
    let s: Setup;
    let reports: Record<string, Record<string, string>>;
    let tokenBefore: string;
    let archiveDigest: string;
    let tmpBefore: string[];

    beforeAll(async () => {
      tmpBefore = hostTmpLeftovers();
      s = await setup();
      const { t } = s;
      tokenBefore = await readFile(path.join(t.dataDir, 'admin-token'), 'utf8');
      archiveDigest = (await t.publishFixture('hostile')).digest;
      // A folder where another task's work would be, with something in it.
      await mkdir(path.join(t.dataDir, 'work', 'decoy-task-1'), { recursive: true });
      await writeFile(path.join(t.dataDir, 'work', 'decoy-task-1', 'decoy-secret'), 'other team data');
      // Two tasks at once, each looking for the other's folder while it runs.
      await t.createWorkflow({
        name: 'hostile',
        tasks: ['a', 'b'].map((node) => ({
          name: node,
          module: 'test/hostile',
          parameters: {
            dataDir: t.dataDir,
            executorDataDir: s.executorDataDir ?? '',
            hostTmp: os.tmpdir(),
            digest: archiveDigest,
            secretName: SECRET_NAME,
            waitMs: 1_500,
          },
        })),
      });
      const run = await runToEnd(t, 'hostile');
      expect(run.tasks.map((task: any) => [task.node, task.status, task.message])).toEqual([
        ['a', 'SUCCEEDED', null],
        ['b', 'SUCCEEDED', null],
      ]);
      reports = Object.fromEntries(run.tasks.map((task: any) => [task.node, task.outputs.report]));
    }, 300_000);
    afterAll(async () => {
      await s?.stop();
    });

    const refused = (attempt: string) => {
      for (const node of ['a', 'b']) expect(reports[node]?.[attempt], `${node}: ${attempt}`).toMatch(/^refused: /);
    };

    it('ran, and could write its own outputs', () => {
      expect(reports.a?.ownOutputs).toBe('written');
      expect(reports.b?.ownOutputs).toBe('written');
    });
    it('cannot find the admin token by walking up from its folder', () => refused('tokenByWalkingUp'));
    it('cannot read the admin token by the data directory’s path', () => refused('tokenByDataDirPath'));
    it('cannot read the database files (or anything else of the data directories)', () => refused('databaseFiles'));
    it('cannot list or read other tasks’ work folders', () => refused('otherTasksWorkDirectories'));
    it('cannot write outside its folder', () => {
      refused('writeOutsideWorkDirectory');
      expect(readdirSync(s.t.dataDir).filter((f) => f.startsWith('pwned-'))).toEqual([]);
      expect(hostTmpLeftovers().filter((f) => !tmpBefore.includes(f))).toEqual([]); // its /tmp was its own
    });
    it('cannot change the admin token', async () => {
      refused('writeAdminToken');
      expect(await readFile(path.join(s.t.dataDir, 'admin-token'), 'utf8')).toBe(tokenBefore);
    });
    it('cannot write to the object store', () => {
      refused('writeObjectStore');
      expect(sha256File(objectFile(s.t.dataDir, archiveDigest))).toBe(archiveDigest);
    });
    it('cannot read the server’s (or its host’s) environment', () => refused('serverEnvironment'));
    it('the data directory is the server’s alone: 0700, its token 0600', () => {
      expect(statSync(s.t.dataDir).mode & 0o777).toBe(0o700);
      expect(statSync(path.join(s.t.dataDir, 'admin-token')).mode & 0o777).toBe(0o600);
      if (s.executorDataDir) expect(statSync(s.executorDataDir).mode & 0o777).toBe(0o700);
    });
  });
}

hostileSuite('embedded default', async () => {
  process.env[SECRET_NAME] = SECRET; // the server's own environment: the embedded host runs in this process
  const t = await startTestApp();
  return {
    t,
    async stop() {
      delete process.env[SECRET_NAME];
      await t.stop();
    },
  };
});

hostileSuite('separate executor host process', async () => {
  const nats: NatsServer = await startNats();
  process.env[SECRET_NAME] = SECRET;
  const t = await startTestApp({ NATS_URL: nats.url });
  const executorDataDir = path.join(os.tmpdir(), `atelier-exec-${Math.random().toString(36).slice(2)}`);
  let host: ExecutorProcess | undefined;
  try {
    host = await startExecutorProcess(
      { NATS_URL: nats.url, ATELIER_URL: t.url, ATELIER_TOKEN: t.app.adminToken, ATELIER_DATA_DIR: executorDataDir },
      ['local'],
      [],
      { [SECRET_NAME]: SECRET },
    );
  } catch (err) {
    await t.stop();
    await nats.stop();
    throw err;
  }
  return {
    t,
    executorDataDir,
    async stop() {
      delete process.env[SECRET_NAME];
      await host?.stop();
      await t.stop();
      await nats.stop();
    },
  };
});

describe('a module archive swapped in the object store after its first use', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await startTestApp();
  });
  afterAll(async () => {
    await t?.stop();
  });

  it('is refused at unpack: the task fails saying the archive does not match its digest, and its code never runs', async () => {
    const { digest } = await t.publishFixture('echo');
    await t.createWorkflow({ name: 'swapped', tasks: [{ name: 'a', module: 'test/echo' }] });
    expect((await runToEnd(t, 'swapped')).status).toBe('SUCCEEDED'); // first use: verified and remembered

    // Other code, with the same entrypoint, put where this module's archive lives.
    const swapped = await mkdtemp(path.join(os.tmpdir(), 'atelier-swapped-'));
    await cp(path.join(fixturesDir, 'modules', 'echo'), swapped, { recursive: true });
    await writeFile(path.join(swapped, 'main.mjs'), `console.log('swapped code ran');\n`);
    await writeFile(objectFile(t.dataDir, digest), await packDirectory(swapped));
    await rm(swapped, { recursive: true, force: true });
    const run = await runToEnd(t, 'swapped');
    expect(run.status).toBe('FAILED');
    expect(run.tasks[0]).toMatchObject({ status: 'FAILED', reason: 'digest-mismatch' });
    expect(run.tasks[0].message).toContain(`does not match its digest ${digest}`);
    expect(run.tasks[0].logs.map((l: any) => l.line).join('\n')).not.toContain('swapped code ran');
    expect(existsSync(objectFile(t.dataDir, digest))).toBe(true);
  }, 120_000);
});

describe('without a usable bubblewrap', () => {
  it('refuses every module, naming the package and the opt-out, and warns once at start', async () => {
    const warnings: string[] = [];
    const executor = createLocalExecutor({ bwrap: '/nonexistent/bwrap', warn: (m) => warnings.push(m) });
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toContain('bubblewrap');
    const root = await mkdtemp(path.join(os.tmpdir(), 'atelier-nobwrap-'));
    try {
      const archive = path.join(root, 'm.tar.gz');
      await writeFile(archive, await packDirectory(path.join(fixturesDir, 'modules', 'echo')));
      const ctx = {
        signal: new AbortController().signal,
        aborted: false,
        workdir: path.join(root, 'work'),
        host: 'h',
        artifactPath: async () => archive,
        log: () => undefined,
        progress: () => undefined,
        metric: () => undefined,
        output: () => undefined,
      };
      const task = makeTask({ module: { digest: sha256File(archive), entrypoint: 'main.mjs', runtime: 'node' } });
      const handle = await executor.submit(task, ctx);
      const outcome = await executor.wait(handle, task, ctx);
      expect(outcome).toMatchObject({ state: 'FAILED', reason: 'isolation-unavailable', retryable: false });
      expect(outcome.message).toContain('apt-get install bubblewrap');
      expect(outcome.message).toContain('ATELIER_MODULE_ISOLATION=none');
      await executor.close?.();
    } finally {
      await rm(root, { recursive: true, force: true });
    }
  });

  it('the opt-out is explicit: ATELIER_MODULE_ISOLATION takes bwrap or none, nothing else', () => {
    expect(moduleIsolation({}).isolation).toBe('bwrap');
    expect(moduleIsolation({ ATELIER_MODULE_ISOLATION: 'none' }).isolation).toBe('none');
    expect(() => moduleIsolation({ ATELIER_MODULE_ISOLATION: 'off' })).toThrow(/"bwrap".*"none"/);
    expect(() => moduleIsolation({ ATELIER_MODULE_READONLY_PATHS: 'relative/path' })).toThrow(/absolute/);
  });
});
