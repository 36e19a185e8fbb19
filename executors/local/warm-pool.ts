// A local hot cluster: node processes spawned ahead of time that each wait for one task on stdin and then import
// its entrypoint, plus the modules already unpacked. A task taken by a warm worker pays neither the unpack nor the
// process start; the pool spawns a replacement behind it. Only the `node` runtime can be pre-started this way.
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import * as tar from 'tar';

/** Runs in the warm worker: one JSON line on stdin names the task; env and cwd are set before the import. */
const BOOT = `
let buffered = '';
process.stdin.setEncoding('utf8');
process.stdin.on('data', (chunk) => {
  buffered += chunk;
  const end = buffered.indexOf('\\n');
  if (end < 0) return;
  process.stdin.removeAllListeners('data');
  process.stdin.destroy();
  const job = JSON.parse(buffered.slice(0, end));
  process.chdir(job.cwd);
  for (const name of Object.keys(process.env)) delete process.env[name];
  Object.assign(process.env, job.env);
  process.argv[1] = job.file;
  import(require('node:url').pathToFileURL(job.file).href).catch((err) => {
    console.error(err && err.stack ? err.stack : String(err));
    process.exitCode = 1;
  });
});
`;

export interface WarmJob {
  file: string;
  cwd: string;
  env: NodeJS.ProcessEnv;
}

export interface WarmPool {
  readonly name: string;
  /** The module archive unpacked once per digest, shared by the tasks of this cluster. */
  moduleDir(digest: string, archive: () => Promise<string>): Promise<string>;
  /** A started worker running `job` (a fresh one is spawned when none is waiting), and one spawned to replace it. */
  run(job: WarmJob): Promise<ChildProcess>;
  /** Kills the waiting workers; the unpacked modules go once the last running task is done. */
  end(): Promise<void>;
  /** A task taken from this pool has ended. */
  release(): void;
}

/** `searchPath`: the PATH a waiting worker starts with (a task's own environment replaces it). */
export async function createWarmPool(name: string, workers: number, searchPath = ''): Promise<WarmPool> {
  const dir = await mkdtemp(path.join(os.tmpdir(), `atelier-hot-${name}-`));
  const idle: ChildProcess[] = [];
  const modules = new Map<string, Promise<string>>();
  let running = 0;
  let ended = false;

  const spawnWorker = () =>
    new Promise<ChildProcess>((resolve, reject) => {
      const child = spawn(process.execPath, ['-e', BOOT], {
        env: { PATH: searchPath },
        detached: true, // its own process group, as a cold task's: a cancel reaches its grandchildren
        stdio: ['pipe', 'pipe', 'pipe', 'pipe'],
      });
      child.on('error', () => undefined);
      child.once('spawn', () => resolve(child));
      child.once('error', reject);
    });
  const kill = (child: ChildProcess) => {
    try {
      process.kill(-child.pid!, 'SIGKILL');
    } catch {
      // already gone
    }
  };
  let refilling: Promise<void> | undefined;
  const refill = () =>
    (refilling ??= (async () => {
      while (!ended && idle.length < workers) {
        const child = await spawnWorker();
        if (ended) kill(child);
        else idle.push(child);
      }
    })().finally(() => (refilling = undefined)));
  const alive = (child: ChildProcess) => child.exitCode === null && child.signalCode === null;
  const removeDir = () => rm(dir, { recursive: true, force: true }).catch(() => undefined);

  await refill();

  return {
    name,
    moduleDir(digest, archive) {
      let unpacked = modules.get(digest);
      if (!unpacked) {
        unpacked = (async () => {
          const target = path.join(dir, digest.replace(/[^A-Za-z0-9]/g, '_'));
          await mkdir(target, { recursive: true });
          await tar.x({ file: await archive(), cwd: target, preserveOwner: false, strict: true });
          return target;
        })();
        modules.set(digest, unpacked);
        unpacked.catch(() => modules.delete(digest)); // a failed unpack is tried again by the next task
      }
      return unpacked;
    },
    async run(job) {
      let child = idle.shift();
      while (child && !alive(child)) child = idle.shift();
      child ??= await spawnWorker();
      running++;
      child.stdin!.end(`${JSON.stringify(job)}\n`);
      void refill().catch(() => undefined);
      return child;
    },
    async end() {
      ended = true;
      for (const child of idle.splice(0)) kill(child);
      if (running === 0) await removeDir();
    },
    release() {
      running--;
      if (ended && running === 0) void removeDir();
    },
  };
}
