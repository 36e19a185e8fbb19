// Issue 15.4: a module's processes die with their executor host, even when the host is SIGKILLed (no handler
// runs). Sandboxed, bwrap's --die-with-parent does it; opted out (ATELIER_MODULE_ISOLATION=none), the supervisor
// sees its pipe from the host close and kills the module's process group.
import { readdirSync, readFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { processAlive } from '../../plugins/process-group';
import { packDirectory } from '../../server/artifacts/archive';
import { startTestApp, type TestApp } from '../harness/app';
import { PUBLISH } from '../harness/client';
import { type ExecutorProcess, startExecutorProcess } from '../harness/executor-process';
import { type NatsServer, startNats } from '../harness/nats';

const START = `mutation ($w: String!) { startRun(workflow: $w, refreshCache: true) { id } }`;

function parentOf(pid: number): number | null {
  try {
    return Number(/^PPid:\s+(\d+)$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1]);
  } catch {
    return null;
  }
}

/** Every live process descended from `root`, with its command line. */
function descendants(root: number): { pid: number; cmdline: string }[] {
  const all = readdirSync('/proc')
    .filter((e) => /^\d+$/.test(e))
    .map(Number);
  const parents = new Map(all.map((pid) => [pid, parentOf(pid)]));
  const found: { pid: number; cmdline: string }[] = [];
  for (const pid of all) {
    for (let p = parents.get(pid); p; p = parents.get(p) ?? null) {
      if (p !== root) continue;
      let cmdline = '';
      try {
        cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8').replace(/\0/g, ' ');
      } catch {}
      found.push({ pid, cmdline });
      break;
    }
  }
  return found;
}

async function until<T>(probe: () => T | false | undefined | Promise<T | false | undefined>, what: string, ms = 60_000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const value = await probe();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

describe('module processes die with their SIGKILLed executor host', () => {
  let nats: NatsServer;
  let t: TestApp;
  const hosts: ExecutorProcess[] = [];
  const dataDirs: string[] = [];

  beforeAll(async () => {
    nats = await startNats();
    t = await startTestApp({ NATS_URL: nats.url });
    // Quiet on purpose: a module that writes would die of a closed pipe once its host is gone, hiding an orphan.
    const dir = await mkdtemp(path.join(os.tmpdir(), 'atelier-quiet-'));
    await writeFile(
      path.join(dir, 'atelier.module.yaml'),
      'namespace: test\nname: quiet-sleeper\nentrypoint: main.sh\nruntime: shell\ncache:\n  enabled: false\n',
    );
    await writeFile(path.join(dir, 'main.sh'), 'sleep 600 &\nwait\n');
    const published = await t.api.upload(PUBLISH, { tags: ['latest'] }, 'artifact', await packDirectory(dir));
    expect(published.errors).toBeUndefined();
    await rm(dir, { recursive: true, force: true });
    await t.createWorkflow({ name: 'long', tasks: [{ name: 'nap', module: 'test/quiet-sleeper' }] });
  }, 120_000);
  afterAll(async () => {
    for (const host of hosts) await host.stop().catch(() => undefined);
    await t?.stop();
    await nats?.stop();
    for (const dir of dataDirs) await rm(dir, { recursive: true, force: true });
  });

  for (const isolation of ['bwrap', 'none']) {
    it(`isolation ${isolation}: every process the host started is gone soon after the host is killed`, async () => {
      const dataDir = path.join(os.tmpdir(), `atelier-orphans-${isolation}-${Math.random().toString(36).slice(2)}`);
      dataDirs.push(dataDir);
      const host = await startExecutorProcess(
        { NATS_URL: nats.url, ATELIER_URL: t.url, ATELIER_TOKEN: t.app.adminToken, ATELIER_DATA_DIR: dataDir },
        ['local'],
        [],
        { ATELIER_MODULE_ISOLATION: isolation },
      );
      hosts.push(host);
      const hostPid = host.child.pid!;
      await t.api.gql(START, { w: 'long' });
      // The module runs once a descendant of the host runs the sleep fixture's entrypoint.
      const started = await until(() => {
        const family = descendants(hostPid);
        return family.some((p) => p.cmdline.includes('sleep 600')) && family;
      }, 'the module to start under the host');
      expect(started.length).toBeGreaterThan(0);

      host.child.kill('SIGKILL');
      await until(() => host.child.exitCode !== null || host.child.signalCode !== null, 'the host to die');
      const survivors = await until(
        async () => {
          const left = (await Promise.all(started.map(async (p) => ((await processAlive(p.pid, null)) ? [p] : [])))).flat();
          return left.length === 0 ? [] : false;
        },
        `the module's processes (${started.map((p) => `${p.pid} ${p.cmdline.slice(0, 80)}`).join('; ')}) to die`,
        30_000,
      ).catch((err: Error) => err.message);
      expect(survivors).toEqual([]);
    }, 180_000);
  }
});
