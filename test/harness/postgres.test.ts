// The test Postgres harness: a cluster serving an empty `atelier` database, or one with every migration applied.
import { spawn } from 'node:child_process';
import { existsSync, readFileSync, rmSync } from 'node:fs';
import path from 'node:path';
import postgres from 'postgres';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openDatabase } from '../../server/db/client';
import { repoRoot } from './cli';
import { type PostgresServer, startPostgres } from './postgres';

describe('postgres harness', () => {
  let server: PostgresServer | undefined;

  beforeAll(async () => {
    server = await startPostgres();
  }, 60_000);

  afterAll(async () => {
    await server?.stop();
  }, 30_000);

  it('serves the atelier database on its URL', async () => {
    const sql = postgres(server!.url, { max: 1, onnotice: () => undefined });
    try {
      const [row] = await sql`select 1 as one, current_database() as db`;
      expect(row).toEqual({ one: 1, db: 'atelier' });
    } finally {
      await sql.end();
    }
  });
});

describe('postgres harness, migrated', () => {
  it('serves an atelier database with every migration applied, which a control plane opens as it is', async () => {
    const journal = JSON.parse(readFileSync(path.join(repoRoot, 'server', 'db', 'migrations', 'meta', '_journal.json'), 'utf8')) as {
      entries: { when: number }[];
    };
    const server = await startPostgres({ migrated: true });
    const sql = postgres(server.url, { max: 1, onnotice: () => undefined });
    try {
      const applied = await sql`select created_at from drizzle.__drizzle_migrations order by created_at`;
      expect(applied.map((row) => Number(row.created_at))).toEqual(journal.entries.map((entry) => entry.when));
      const db = await openDatabase({ url: server.url, dataDir: '' });
      await db.close();
      expect((await sql`select count(*)::int as n from drizzle.__drizzle_migrations`)[0]!.n).toBe(journal.entries.length);
    } finally {
      await sql.end();
      await server.stop();
    }
  }, 120_000);
});

// vitest ends a worker with SIGTERM; the cluster a worker keeps for all its files (shared-postgres.ts) must stop with it.
describe('postgres harness, its process ended by a signal', () => {
  it('stops its cluster and removes its files when the process gets SIGTERM', async () => {
    const script = `import { startPostgres } from ${JSON.stringify(path.join(repoRoot, 'test', 'harness', 'postgres.ts'))};
const server = await startPostgres();
console.log(JSON.stringify({ logFile: server.logFile }));
setInterval(() => undefined, 1_000);`;
    // Plain node with tsx's loader, as a vitest worker is: tsx's own command line makes a signal end its child through
    // process.exit, which would hide what this checks.
    const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '--eval', script], {
      cwd: repoRoot,
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    const exited = new Promise((resolve) => child.once('exit', resolve));
    let pid = 0;
    let baseDir = '';
    try {
      const line = await new Promise<string>((resolve, reject) => {
        let out = '';
        child.stdout!.on('data', (chunk) => {
          out += chunk;
          if (out.includes('\n')) resolve(out.split('\n')[0]!);
        });
        child.once('exit', (code) => reject(new Error(`the child ended (${code}) before its cluster started`)));
      });
      baseDir = path.dirname(JSON.parse(line).logFile);
      pid = Number(readFileSync(path.join(baseDir, 'data', 'postmaster.pid'), 'utf8').split('\n')[0]);
      child.kill('SIGTERM');
      await exited;
      expect(existsSync(baseDir)).toBe(false);
      // pg_ctl's stop waited for the pid file to go; the postmaster's own exit may follow it by a moment
      for (let i = 0; i < 250 && alive(pid); i++) await new Promise((r) => setTimeout(r, 20));
      expect(alive(pid)).toBe(false);
    } finally {
      child.kill('SIGKILL');
      if (pid && alive(pid)) process.kill(pid, 'SIGQUIT');
      if (baseDir) rmSync(baseDir, { recursive: true, force: true });
    }
  }, 60_000);
});

/** Running: a process that has not exited (a zombie no one reaps, as pid 1 of a container may leave it, has). */
function alive(pid: number): boolean {
  try {
    return !/^\d+ \(.*\) Z/s.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return false;
  }
}
