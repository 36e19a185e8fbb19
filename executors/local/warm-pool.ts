// A local hot cluster: node processes spawned ahead of time that each wait for one task on stdin and then import
// its entrypoint, plus the modules already unpacked. A task taken by a warm worker pays neither the unpack nor the
// process start; the pool spawns a replacement behind it. Only the `node` runtime can be pre-started this way.
// Sandboxed, each worker waits in its own sandbox with its own folder at /work; the task's module is copied into
// it (read-only there) when the task comes, so a worker sees only its own task, and that folder is the attempt's
// (its model inputs, its outputs and artifacts) until the host releases it. Either way a worker keeps its stdin,
// the pipe from the host, open: when the host dies the worker kills its group.
import { type ChildProcess, spawn } from 'node:child_process';
import { chmod, chown, cp, mkdir, rm } from 'node:fs/promises';
import path from 'node:path';
import { ownedTempDir } from '../../plugins/temp-dirs';
import { type Isolator, SANDBOX_WORKDIR, sandboxArgs, sandboxSearchPath } from './sandbox';
import { unpackVerified } from './unpack';

/** Runs in the warm worker: one JSON line on stdin names the task; env and cwd are set before the import. */
const BOOT = `
let buffered = '';
process.stdin.setEncoding('utf8');
process.stdin.on('data', (chunk) => {
  buffered += chunk;
  const end = buffered.indexOf('\\n');
  if (end < 0) return;
  process.stdin.removeAllListeners('data');
  // The host never closes this pipe while it lives: end-of-file means it died, and the task dies with it.
  process.stdin.on('end', () => { try { process.kill(0, 'SIGKILL'); } catch {} process.exit(137); });
  process.stdin.resume();
  process.stdin.unref(); // the task, not the watch, decides when the worker is done
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
  /** The module unpacked by `moduleDir`. */
  moduleDir: string;
  entrypoint: string;
  /** The task's environment, its paths as the module sees them (/work/… in the sandbox). */
  env: NodeJS.ProcessEnv;
}

/** A worker taken for one task: its process, waiting for `start`, and (sandboxed) the folder it sees as /work. */
export interface WarmWorker {
  readonly child: ChildProcess;
  /** The host's path of the worker's /work, the attempt's folder, removed at `release`; undefined unsandboxed. */
  readonly folder: string | undefined;
}

export interface WarmPool {
  readonly name: string;
  /** The module archive unpacked once per digest, shared by the tasks of this cluster. */
  moduleDir(digest: string, archive: () => Promise<string>): Promise<string>;
  /** A worker for one task (a fresh one is spawned when none is waiting), and one spawned to replace it. */
  take(): Promise<WarmWorker>;
  /** Runs `job` in the worker `take` gave. */
  start(worker: WarmWorker, job: WarmJob): Promise<void>;
  /** Kills the waiting workers; the unpacked modules go once the last running task is done. */
  end(): Promise<void>;
  /**
   * The task `take` gave the worker for has ended, and the host is done with its folder: its process group is
   * killed (a worker never started would wait for ever) and its folder removed.
   */
  release(worker: WarmWorker): void;
}

/** `searchPath`: the PATH a waiting worker starts with when not sandboxed (a task's own environment replaces it). */
export async function createWarmPool(name: string, workers: number, isolator: Isolator, searchPath = ''): Promise<WarmPool> {
  if (isolator.kind === 'unavailable') throw new Error(`hot cluster ${name}: ${isolator.reason}`);
  const sandbox = isolator.kind === 'bwrap' ? isolator : undefined;
  const dir = await ownedTempDir(`atelier-hot-${name}-`);
  await chmod(dir, 0o711); // a sandboxed worker's identity must reach its own folder, and list none
  await mkdir(path.join(dir, 'modules'), { mode: 0o700 });
  const idle: ChildProcess[] = [];
  /** A sandboxed worker's own folder (bound at /work). */
  const folders = new Map<ChildProcess, string>();
  const modules = new Map<string, Promise<string>>();
  let running = 0;
  let ended = false;
  let spawned = 0;

  const spawnWorker = async () => {
    let folder: string | undefined;
    let command = process.execPath;
    let args = ['-e', BOOT];
    if (sandbox) {
      folder = path.join(dir, `worker-${++spawned}`);
      await mkdir(path.join(folder, 'module'), { recursive: true, mode: 0o700 });
      await mkdir(path.join(folder, 'outputs'));
      if (sandbox.identity) {
        await chown(folder, sandbox.identity.uid, sandbox.identity.gid);
        await chown(path.join(folder, 'outputs'), sandbox.identity.uid, sandbox.identity.gid);
      }
      await chmod(path.join(folder, 'module'), 0o755);
      command = sandbox.bwrap;
      args = sandboxArgs(sandbox, {
        attemptDir: folder,
        moduleDir: path.join(folder, 'module'),
        cwd: SANDBOX_WORKDIR,
        network: false,
        command: process.execPath,
        args,
      });
    }
    return new Promise<ChildProcess>((resolve, reject) => {
      const child = spawn(command, args, {
        cwd: '/',
        env: { PATH: sandbox ? sandboxSearchPath(sandbox) : searchPath },
        detached: true, // its own process group, as a cold task's: a cancel reaches its grandchildren
        stdio: ['pipe', 'pipe', 'pipe', 'pipe'],
        ...(sandbox?.identity ?? {}),
      });
      child.on('error', () => undefined);
      child.stdin!.on('error', () => undefined);
      if (folder) {
        folders.set(child, folder);
        // A worker that never took a task (killed as the pool ends) takes its folder with it; a taken one's stays
        // the attempt's until release: its artifacts are read after it exits.
        child.once('exit', () => {
          if (folders.delete(child)) void rm(folder!, { recursive: true, force: true }).catch(() => undefined);
        });
      }
      child.once('spawn', () => resolve(child));
      child.once('error', reject);
    });
  };
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
          const target = path.join(dir, 'modules', digest.replace(/[^A-Za-z0-9]/g, '_'));
          await unpackVerified(await archive(), digest, target);
          return target;
        })();
        modules.set(digest, unpacked);
        unpacked.catch(() => modules.delete(digest)); // a failed unpack is tried again by the next task
      }
      return unpacked;
    },
    async take() {
      let child = idle.shift();
      while (child && !alive(child)) child = idle.shift();
      child ??= await spawnWorker();
      running++;
      const folder = folders.get(child);
      folders.delete(child);
      void refill().catch(() => undefined);
      return { child, folder };
    },
    async start({ child, folder }, job) {
      let file = path.resolve(job.moduleDir, job.entrypoint);
      let cwd = job.moduleDir;
      if (folder) {
        // The worker's /work/module is this folder's module/, bound read-only: the task's module goes there.
        await cp(job.moduleDir, path.join(folder, 'module'), { recursive: true });
        cwd = path.posix.join(SANDBOX_WORKDIR, 'module');
        file = path.posix.join(cwd, path.relative(job.moduleDir, file).split(path.sep).join('/'));
      }
      // Written, not ended: the open pipe is how the worker knows its host lives.
      child.stdin!.write(`${JSON.stringify({ file, cwd, env: job.env })}\n`);
    },
    async end() {
      ended = true;
      for (const child of idle.splice(0)) kill(child);
      if (running === 0) await removeDir();
    },
    release({ child, folder }) {
      if (alive(child)) kill(child);
      running--;
      if (ended && running === 0) void removeDir();
      else if (folder) void rm(folder, { recursive: true, force: true }).catch(() => undefined);
    },
  };
}
