// Where Postgres' time a task goes in a throughput run (throughput-profile.ts): the CPU of the whole cluster (the
// postmaster, its backends and background processes, from /proc), and with PROFILE_PG_STATS=1 the cumulative
// statistics views over the run's window: rows inserted, updated (HOT or not) and deleted a task by table, the trigger
// functions' calls and own time, WAL records and bytes, and each statement's buffers and WAL a task.
import { spawn } from 'node:child_process';
import { readdir, readFile } from 'node:fs/promises';
import type postgres from 'postgres';

/**
 * The server settings the statistics need (trigger functions counted, I/O timed), and any given as
 * `PROFILE_PG_SETTINGS=name=value,name=value` (a planner setting tried on the whole run, say).
 */
export const statsSettings: Record<string, string> = {
  ...(process.env.PROFILE_PG_STATS === '1' ? { track_functions: 'all', track_io_timing: 'on' } : {}),
  ...Object.fromEntries(
    (process.env.PROFILE_PG_SETTINGS ?? '')
      .split(',')
      .filter(Boolean)
      .map((pair) => pair.split('=', 2) as [string, string]),
  ),
};

/**
 * The CPU (user + system, ms) the cluster on `port` has used so far: the postmaster's own and that of the children it
 * has reaped (autovacuum workers that ended), plus every live child's (backends, WAL writer, checkpointer, …).
 */
export async function postgresCpuMs(port: number): Promise<number> {
  const stats = new Map<number, string[]>();
  let postmaster: number | undefined;
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const stat = await readFile(`/proc/${entry}/stat`, 'utf8').catch(() => '');
    if (!stat) continue;
    stats.set(Number(entry), stat.slice(stat.lastIndexOf(')') + 2).split(' '));
    if (postmaster === undefined && stat.includes('(postgres)')) {
      const cmd = (await readFile(`/proc/${entry}/cmdline`, 'utf8').catch(() => '')).split('\0');
      if (cmd.some((arg, i) => arg === '-p' && cmd[i + 1] === String(port))) postmaster = Number(entry);
    }
  }
  if (postmaster === undefined) return 0;
  // Fields after the command: state 0, ppid 1, …, utime 11, stime 12, cutime 13, cstime 14 (clock ticks, 100 a second).
  const ticks = (f: string[] | undefined, from: number, to: number) => (f ? f.slice(from, to + 1).reduce((s, v) => s + (Number(v) || 0), 0) : 0);
  let total = ticks(stats.get(postmaster), 11, 14);
  for (const fields of stats.values()) if (Number(fields[1]) === postmaster) total += ticks(fields, 11, 12);
  return total * 10;
}

type Sql = postgres.Sql;
interface Snapshot {
  tables: Map<string, number[]>;
  functions: Map<string, number[]>;
  wal: number[];
}

const TABLE_COLUMNS = ['n_tup_ins', 'n_tup_upd', 'n_tup_hot_upd', 'n_tup_del', 'idx_scan', 'seq_scan'] as const;

/** The views' counters now, in the database `sql` is connected to (each backend flushes its counts within a second of going idle: wait before the end's). */
export async function statsSnapshot(sql: Sql): Promise<Snapshot> {
  await sql`select pg_stat_force_next_flush()`;
  // A table's TOAST table (where its large values go, in chunks of ~2 KB) is named after its table.
  const tables = await sql<Record<string, string>[]>`
    select coalesce(o.relname || ' (TOAST)', s.relname) as relname, ${sql.unsafe(TABLE_COLUMNS.map((c) => `coalesce(s.${c}, 0)::float8 as ${c}`).join(', '))}
    from pg_stat_all_tables s left join pg_class o on o.reltoastrelid = s.relid
    where s.schemaname = 'public' or (s.schemaname = 'pg_toast' and o.relnamespace = 'public'::regnamespace)`;
  const functions = await sql<{ funcname: string; calls: number; self_time: number; total_time: number }[]>`
    select funcname, calls::float8 as calls, self_time, total_time from pg_stat_user_functions`;
  const [wal] = await sql<{ wal_records: number; wal_fpi: number; wal_bytes: number }[]>`
    select wal_records::float8 as wal_records, wal_fpi::float8 as wal_fpi, wal_bytes::float8 as wal_bytes from pg_stat_wal`;
  return {
    tables: new Map(tables.map((t) => [t.relname!, TABLE_COLUMNS.map((c) => Number(t[c]))])),
    functions: new Map(functions.map((f) => [f.funcname, [Number(f.calls), Number(f.self_time), Number(f.total_time)]])),
    wal: [Number(wal?.wal_records), Number(wal?.wal_fpi), Number(wal?.wal_bytes)],
  };
}

/**
 * What changed between two snapshots, and each statement's buffers and WAL a task (`statements`: a connection to the
 * database pg_stat_statements was created in); lines to print.
 */
export async function statsLines(statements: Sql, database: string, before: Snapshot, after: Snapshot, width: number, observerRole: string): Promise<string[]> {
  const per = (n: number, digits = 3) => (n / width).toFixed(digits);
  const lines = [`rows a task by table (inserted, updated, of which HOT, deleted; index scans, sequential scans in all):`];
  for (const [name, now] of after.tables) {
    const was = before.tables.get(name) ?? now.map(() => 0);
    const d = now.map((v, i) => v - (was[i] ?? 0));
    if (d.every((v) => v === 0)) continue;
    lines.push(`  ${name.padEnd(28)} ins ${per(d[0]!)} upd ${per(d[1]!)} hot ${per(d[2]!)} del ${per(d[3]!)}; idx_scan ${d[4]} seq_scan ${d[5]}`);
  }
  lines.push('trigger and other functions (calls in all; own and total ms in all; µs a task own):');
  for (const [name, now] of after.functions) {
    const was = before.functions.get(name) ?? [0, 0, 0];
    const [calls, self, total] = now.map((v, i) => v - (was[i] ?? 0)) as [number, number, number];
    if (!calls) continue;
    lines.push(
      `  ${name.padEnd(34)} ${String(calls).padStart(6)} calls, ${self.toFixed(0)} ms own, ${total.toFixed(0)} ms total, ${((self / width) * 1000).toFixed(1)} µs a task`,
    );
  }
  const wal = after.wal.map((v, i) => v - (before.wal[i] ?? 0));
  lines.push(`WAL a task: ${per(wal[0]!, 2)} records, ${per(wal[1]!, 3)} full-page images, ${per(wal[2]!, 0)} bytes`);
  const top = await statements<
    { query: string; calls: number; ms: number; hit: number; read: number; dirtied: number; wal_records: number; wal_bytes: number }[]
  >`
    select query, calls::float8 as calls, total_exec_time as ms, shared_blks_hit::float8 as hit, shared_blks_read::float8 as read,
      shared_blks_dirtied::float8 as dirtied, wal_records::float8 as wal_records, wal_bytes::float8 as wal_bytes
    from pg_stat_statements
    where dbid = (select oid from pg_database where datname = ${database}) and userid <> (select oid from pg_roles where rolname = ${observerRole})
    order by total_exec_time desc limit 8`;
  lines.push('statements by server time, a task: ms; shared buffers hit, read, dirtied; WAL records, bytes:');
  for (const s of top)
    lines.push(
      `  ${((s.ms / width) * 1000).toFixed(1).padStart(6)} µs ${per(s.hit, 1).padStart(6)} hit ${per(s.read, 2)} read ${per(s.dirtied, 2)} dirtied ${per(s.wal_records, 2)} WAL rec ${per(s.wal_bytes, 0).padStart(5)} B  ${s.query.replace(/\s+/g, ' ').slice(0, 90)}`,
    );
  return lines;
}

/**
 * `PROFILE_PERF=file`: `perf record` (999 samples a second, no call graphs; with PROFILE_PERF_GRAPH=1, 499 a second with
 * DWARF call graphs) of the cluster on `port`'s processes over the run; `perf report -i file --sort sym` reads it. Needs perf and the right to trace those processes (root here).
 */
export async function perfProbe(port: number): Promise<{ stop(): Promise<void> }> {
  const file = process.env.PROFILE_PERF;
  if (!file) return { async stop() {} };
  const pids: number[] = [];
  let postmaster: number | undefined;
  for (const entry of await readdir('/proc')) {
    const cmd = (await readFile(`/proc/${entry}/cmdline`, 'utf8').catch(() => '')).split('\0');
    if (cmd.some((arg, i) => arg === '-p' && cmd[i + 1] === String(port)) && cmd[0]?.endsWith('postgres')) postmaster = Number(entry);
  }
  for (const entry of await readdir('/proc')) {
    const stat = await readFile(`/proc/${entry}/stat`, 'utf8').catch(() => '');
    if (stat && Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]) === postmaster) pids.push(Number(entry));
  }
  const graph = process.env.PROFILE_PERF_GRAPH === '1' ? ['--call-graph', 'dwarf,16384', '-F', '999'] : ['-F', '999'];
  return perfRecord([...graph, '-o', file, '-p', pids.join(',')]);
}

/** `perf record` with `args`, attached before it resolves; `stop()` ends it and waits for its file to be written. */
export async function perfRecord(args: string[]): Promise<{ stop(): Promise<void> }> {
  const perf = spawn('perf', ['record', ...args], { stdio: 'ignore' });
  await new Promise((resolve) => setTimeout(resolve, 300)); // attached
  return {
    async stop() {
      const exited = new Promise((resolve) => perf.once('exit', resolve));
      perf.kill('SIGINT');
      await exited;
    },
  };
}
