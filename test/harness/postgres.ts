// Starts a throwaway PostgreSQL 15 cluster with an `atelier` database for tests. Call stop() from afterAll: it
// stops the server and removes its files even when tests failed; a hook on process exit stops it if the runner dies.
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, rmSync } from 'node:fs';
import { chown, mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import postgres from 'postgres';
import { freePort } from './ports';

export interface PostgresServer {
  /** postgres://postgres@127.0.0.1:<port>/atelier */
  url: string;
  stop(): Promise<void>;
}

/**
 * Where the PostgreSQL 15 server binaries are: PG_BIN_DIR when set, else the first of /usr/local/bin (a source or
 * image install) and Debian's /usr/lib/postgresql/15/bin (the `postgresql-15` package, which .ci/run installs) that
 * holds initdb.
 */
const BIN_DIR = process.env.PG_BIN_DIR ?? (['/usr/local/bin', '/usr/lib/postgresql/15/bin'].find((dir) => existsSync(join(dir, 'initdb'))) || '/usr/local/bin');
const START_TRIES = 3;

export async function startPostgres(): Promise<PostgresServer> {
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

  try {
    await mkdir(socketDir);
    if (owner) {
      await chown(baseDir, owner.uid, owner.gid);
      await chown(socketDir, owner.uid, owner.gid);
    }
    await run('initdb', ['-D', dataDir, '-A', 'trust', '-U', 'postgres', '--no-sync', '-E', 'UTF8', '--locale=C']);

    let port = 0;
    const failures: string[] = [];
    for (let attempt = 0; attempt < START_TRIES && !port; attempt++) {
      const candidate = await freePort();
      const settings = `-p ${candidate} -k ${socketDir} -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off`;
      try {
        await run('pg_ctl', ['-D', dataDir, '-l', logFile, '-o', settings, '-w', 'start']);
        port = candidate;
      } catch (err) {
        // Most likely another process took the port between freePort() and the bind.
        failures.push((err as Error).message);
      }
    }
    if (!port) throw new Error(`postgres did not start:\n${failures.join('\n')}`);

    const admin = postgres({ host: '127.0.0.1', port, user: 'postgres', database: 'postgres', max: 1, onnotice: () => undefined });
    try {
      await admin.unsafe('create database atelier');
    } finally {
      await admin.end();
    }

    let stopped: Promise<void> | undefined;
    return {
      url: `postgres://postgres@127.0.0.1:${port}/atelier`,
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

function postgresUser(): { uid: number; gid: number } {
  const uid = spawnSync('id', ['-u', 'postgres'], { encoding: 'utf8' });
  const gid = spawnSync('id', ['-g', 'postgres'], { encoding: 'utf8' });
  if (uid.status !== 0 || gid.status !== 0) {
    throw new Error('running as root, but there is no `postgres` user to run initdb and postgres as');
  }
  return { uid: Number(uid.stdout.trim()), gid: Number(gid.stdout.trim()) };
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
