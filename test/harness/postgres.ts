// Starts a throwaway PostgreSQL 15 cluster with an `atelier` database for tests. Call stop() from afterAll: it
// stops the server and removes its files even when tests failed; a hook on process exit stops it if the runner dies.
// restart() stops it (a fast shutdown, an immediate one, or a SIGKILL of the postmaster) and starts it again on the
// same port and data directory, as an operator's restart or a crash would.
import { spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, realpathSync, renameSync, rmSync, statSync } from 'node:fs';
import { chown, mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import postgres from 'postgres';
import { exitHandlersOnTermination } from './on-termination';
import { freePort } from './ports';

export interface PostgresServer {
  /** postgres://postgres@127.0.0.1:<port>/atelier */
  url: string;
  port: number;
  /** The directory of its Unix socket (`.s.PGSQL.<port>`). */
  socketDir: string;
  /** The server's log file. */
  logFile: string;
  /**
   * Stops the server (`fast`: pg_ctl's clean shutdown; `immediate`: pg_ctl's crash-like one; `kill`: SIGKILL of the
   * postmaster), waits `down` (milliseconds, or until a promise settles: what a test does meanwhile), starts it again.
   */
  restart(mode?: 'fast' | 'immediate' | 'kill', down?: number | Promise<unknown>): Promise<void>;
  stop(): Promise<void>;
}

export interface PostgresOptions {
  /**
   * Keep `synchronous_commit` on (default off, for speed). A test that crashes the server needs it: with it off, a
   * commit the client was told about can be lost by an immediate stop or a SIGKILL, which no real deployment allows.
   */
  durableCommits?: boolean;
  /** More server settings, each passed as `-c name=value` (bench/peers.ts loads pg_stat_statements so). */
  settings?: Record<string, string>;
  /**
   * The `atelier` database comes with every migration applied, as a control plane's first start leaves it (a copy of
   * a cluster migrated once per machine and set of migrations, see migratedTemplate). Applying them on a fresh
   * database took ~0.4 s of CPU and 1-4 s of wall on the loaded machine, at every cluster's first control plane. For
   * tests of anything but the migrations themselves; a control plane still takes the migration lock and finds nothing
   * to apply.
   */
  migrated?: boolean;
}

/**
 * Where the PostgreSQL 15 server binaries are: PG_BIN_DIR when set, else the first of /usr/local/bin (a source or
 * image install) and Debian's /usr/lib/postgresql/15/bin (the `postgresql-15` package, which .ci/run installs) that
 * holds initdb.
 */
const BIN_DIR = process.env.PG_BIN_DIR ?? (['/usr/local/bin', '/usr/lib/postgresql/15/bin'].find((dir) => existsSync(join(dir, 'initdb'))) || '/usr/local/bin');
const START_TRIES = 3;

export async function startPostgres(options: PostgresOptions = {}): Promise<PostgresServer> {
  // initdb refuses to run as root, so as root every binary runs as the `postgres` system user.
  const asRoot = process.getuid?.() === 0;
  const owner = asRoot ? postgresUser() : undefined;
  const baseDir = await mkdtemp(join(tmpdir(), 'atelier-pg-'));
  const dataDir = join(baseDir, 'data');
  const socketDir = join(baseDir, 'sock');
  const logFile = join(baseDir, 'server.log');
  const run = (binary: string, args: string[]) => runAs(owner !== undefined, join(BIN_DIR, binary), args, baseDir);
  const pgCtlStop = ['-D', dataDir, '-m', 'immediate', '-w', 'stop'];

  const onExit = () => {
    if (existsSync(join(dataDir, 'postmaster.pid'))) {
      const [command, args] = commandFor(owner !== undefined, join(BIN_DIR, 'pg_ctl'), pgCtlStop);
      spawnSync(command, args, { stdio: 'ignore', cwd: baseDir });
    }
    rmSync(baseDir, { recursive: true, force: true });
  };
  process.once('exit', onExit);
  exitHandlersOnTermination();

  try {
    await mkdir(socketDir);
    if (owner) {
      await chown(baseDir, owner.uid, owner.gid);
      await chown(socketDir, owner.uid, owner.gid);
    }
    const template = options.migrated ? await migratedTemplate(owner !== undefined) : await initdbTemplate(baseDir, owner !== undefined);
    await runAs(false, 'cp', ['-a', template, dataDir], baseDir);

    let port = 0;
    const failures: string[] = [];
    const commit = options.durableCommits ? 'on' : 'off';
    const extra = Object.entries(options.settings ?? {})
      .map(([name, value]) => ` -c ${name}=${value}`)
      .join('');
    const settingsFor = (p: number) =>
      `-p ${p} -k ${socketDir} -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=${commit} -c full_page_writes=off${extra}`;
    const start = (p: number) => run('pg_ctl', ['-D', dataDir, '-l', logFile, '-o', settingsFor(p), '-w', 'start']);
    for (let attempt = 0; attempt < START_TRIES && !port; attempt++) {
      const candidate = await freePort();
      try {
        await start(candidate);
        port = candidate;
      } catch (err) {
        // Most likely another process took the port between freePort() and the bind.
        failures.push((err as Error).message);
      }
    }
    if (!port) throw new Error(`postgres did not start:\n${failures.join('\n')}`);

    if (!options.migrated) {
      const admin = postgres({ host: '127.0.0.1', port, user: 'postgres', database: 'postgres', max: 1, onnotice: () => undefined });
      try {
        await admin.unsafe('create database atelier');
      } finally {
        await admin.end();
      }
    }

    let stopped: Promise<void> | undefined;
    return {
      url: `postgres://postgres@127.0.0.1:${port}/atelier`,
      port,
      socketDir,
      logFile,
      async restart(mode = 'fast', down = 0) {
        if (stopped) throw new Error('postgres was stopped: it cannot be restarted');
        if (mode === 'kill') {
          const pid = Number(readFileSync(join(dataDir, 'postmaster.pid'), 'utf8').split('\n')[0]);
          process.kill(pid, 'SIGKILL');
          // Gone, or a zombie nobody reaps (pid 1 of a container may not).
          for (let i = 0; i < 250 && /^\d+ \(.*\) [^Z]/s.test(readStat(pid)); i++) await new Promise((r) => setTimeout(r, 20));
        } else await run('pg_ctl', ['-D', dataDir, '-m', mode, '-w', 'stop']);
        if (typeof down === 'number') await new Promise((r) => setTimeout(r, down));
        else await down.catch(() => undefined);
        // After a SIGKILL the backends linger until they notice, holding the shared memory: start again until it is free.
        const errors: string[] = [];
        for (let i = 0; i < 40; i++) {
          try {
            await start(port);
            return;
          } catch (err) {
            errors.push((err as Error).message);
            await new Promise((r) => setTimeout(r, 250));
          }
        }
        throw new Error(`postgres did not start again on port ${port}:\n${errors.slice(-2).join('\n')}`);
      },
      stop() {
        stopped ??= (async () => {
          process.removeListener('exit', onExit);
          await run('pg_ctl', pgCtlStop).catch(() => undefined);
          await rm(baseDir, { recursive: true, force: true });
        })();
        return stopped;
      },
    };
  } catch (err) {
    process.removeListener('exit', onExit);
    onExit();
    throw err;
  }
}

const INITDB_ARGS = ['-A', 'trust', '-U', 'postgres', '--no-sync', '-E', 'UTF8', '--locale=C'];

/**
 * A fresh cluster's data directory to copy (`cp -a`, owner and modes kept): one initdb made once per machine and kept
 * in the temp directory, keyed by the binaries and initdb's arguments. initdb took ~1.6 s of CPU (5.8 s on the loaded
 * machine) where the copy takes ~0.2 s, and 17 test files start a cluster.
 */
async function initdbTemplate(baseDir: string, asPostgres: boolean): Promise<string> {
  const initdb = join(BIN_DIR, 'initdb');
  const template = join(tmpdir(), `atelier-pg-initdb-${initdbKey(asPostgres)}`);
  if (!existsSync(join(template, 'PG_VERSION'))) {
    // Made beside the template and renamed into place: another worker making it at the same time never sees half.
    const making = join(baseDir, 'initdb');
    await runAs(asPostgres, initdb, ['-D', making, ...INITDB_ARGS], baseDir);
    placeTemplate(making, template);
  }
  return template;
}

function initdbKey(asPostgres: boolean): string {
  const initdb = realpathSync(join(BIN_DIR, 'initdb'));
  return createHash('sha256')
    .update(JSON.stringify([initdb, statSync(initdb).mtimeMs, INITDB_ARGS, asPostgres]))
    .digest('hex')
    .slice(0, 12);
}

/** Renames a finished template into place, unless another worker's got there first (then this one goes). */
function placeTemplate(making: string, template: string): void {
  try {
    renameSync(making, template);
  } catch {
    rmSync(making, { recursive: true, force: true });
  }
}

const MIGRATIONS_DIR = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'server', 'db', 'migrations');

/**
 * A stopped cluster whose `atelier` database has every migration of server/db/migrations applied (by openDatabase, as
 * a control plane applies them), made once per machine, keyed by initdb's key and the migrations' files: a changed or
 * new migration makes a new one.
 */
async function migratedTemplate(asPostgres: boolean): Promise<string> {
  const hash = createHash('sha256').update(initdbKey(asPostgres));
  // Named relative to the folder, so every checkout of the same migrations shares one template.
  const files = readdirSync(MIGRATIONS_DIR, { recursive: true, withFileTypes: true })
    .filter((entry) => entry.isFile())
    .map((entry) => relative(MIGRATIONS_DIR, join(entry.parentPath, entry.name)))
    .sort();
  for (const file of files) hash.update(file).update(readFileSync(join(MIGRATIONS_DIR, file)));
  const template = join(tmpdir(), `atelier-pg-migrated-${hash.digest('hex').slice(0, 12)}`);
  if (existsSync(join(template, 'PG_VERSION'))) return template;
  const server = await startPostgres();
  const baseDir = dirname(server.socketDir);
  try {
    const { openDatabase } = await import('../../server/db/client');
    const db = await openDatabase({ url: server.url, dataDir: '' });
    await db.close();
    // A clean shutdown, so the copy starts without recovery.
    await runAs(asPostgres, join(BIN_DIR, 'pg_ctl'), ['-D', join(baseDir, 'data'), '-m', 'fast', '-w', 'stop'], baseDir);
    placeTemplate(join(baseDir, 'data'), template);
  } finally {
    await server.stop();
  }
  return template;
}

/** Whether the server binaries have this extension's library (`pg_stat_statements` ships with Debian's postgresql-15, not with every build). */
export function hasServerLibrary(name: string): boolean {
  const pgConfig = join(BIN_DIR, 'pg_config');
  const libDir = existsSync(pgConfig) ? spawnSync(pgConfig, ['--pkglibdir'], { encoding: 'utf8' }).stdout?.trim() : undefined;
  const candidates = [libDir, join(dirname(realpathSync(join(BIN_DIR, 'postgres'))), '..', 'lib')].filter((d): d is string => !!d);
  return candidates.some((dir) => existsSync(join(dir, `${name}.so`)));
}

function readStat(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return '';
  }
}

let postgresIds: { uid: number; gid: number } | undefined;

/** The `postgres` system user's ids, asked once per process (two `id` runs, each blocking the worker ~20-60 ms). */
function postgresUser(): { uid: number; gid: number } {
  if (postgresIds) return postgresIds;
  const uid = spawnSync('id', ['-u', 'postgres'], { encoding: 'utf8' });
  const gid = spawnSync('id', ['-g', 'postgres'], { encoding: 'utf8' });
  if (uid.status !== 0 || gid.status !== 0) {
    throw new Error('running as root, but there is no `postgres` user to run initdb and postgres as');
  }
  postgresIds = { uid: Number(uid.stdout.trim()), gid: Number(gid.stdout.trim()) };
  return postgresIds;
}

function commandFor(asPostgres: boolean, binary: string, args: string[]): [string, string[]] {
  return asPostgres ? ['runuser', ['-u', 'postgres', '--', binary, ...args]] : [binary, args];
}

function runAs(asPostgres: boolean, binary: string, args: string[], cwd: string): Promise<void> {
  const [command, commandArgs] = commandFor(asPostgres, binary, args);
  return new Promise((resolve, reject) => {
    // pg_ctl leaves the server running in the background with its output in the log file; wait for pg_ctl's
    // own exit, not for the close of pipes the server might inherit.
    const child = spawn(command, commandArgs, { cwd, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, LC_ALL: 'C' } });
    let output = '';
    const collect = (chunk: Buffer) => {
      output = (output + chunk.toString()).slice(-8_000);
    };
    child.stdout!.on('data', collect);
    child.stderr!.on('data', collect);
    child.once('error', reject);
    child.once('exit', (code, signal) => {
      if (code === 0) resolve();
      else reject(new Error(`${[command, ...commandArgs].join(' ')} failed (${signal ?? `exit ${code}`}):\n${output}`));
    });
  });
}
