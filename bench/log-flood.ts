// Logs: a module writing ~200 MB of 100-byte log lines (BENCH_LOG_FLOOD_MIB, default 200) through the local executor
// (an `atelier executor` process) and the control plane as its own process, on Postgres and NATS. For each run: wall time
// (startRun → SUCCEEDED), the control plane's peak RSS while it ran (VmHWM, reset before it), the bytes of log lines
// stored and the bytes dropped (by the host, and by the control plane: task_log_bytes). Twice: a host that caps its
// attempts' logs (ATELIER_MAX_LOG_BYTES at its default, 10 MiB), and a host that does not (its cap at the 1 GiB maximum),
// so the control plane's own cap is all that stands between the flood and the database. The floor: the same module
// writing the same bytes to /dev/null, through the same path.
import { randomUUID } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import postgres from 'postgres';
import { packDirectory } from '../server/artifacts/archive';
import { apiClient, PUBLISH } from '../test/harness/client';
import { startControlPlaneProcess } from '../test/harness/control-plane-process';
import { startExecutorProcess } from '../test/harness/executor-process';
import { freePort } from '../test/harness/ports';
import { type Row, runWhenMain } from './lib';

export interface Infra {
  pgUrl: string;
  natsUrl: string;
}

const here = path.dirname(fileURLToPath(import.meta.url));
const TOKEN = `atl_${randomUUID().replaceAll('-', '')}`;
const MB = 1_000_000;

interface Measured {
  wallMs: number;
  peakMb: number;
  stored: number;
  hostDropped: number;
  controlPlaneDropped: number;
}

/** Peak resident memory (VmHWM) of `pid` in MB; `reset` starts the peak over from now (/proc/PID/clear_refs). */
async function peakOf(pid: number, reset = false): Promise<number> {
  if (reset) await writeFile(`/proc/${pid}/clear_refs`, '5');
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  return Number(/VmHWM:\s+(\d+)/.exec(status)?.[1] ?? 0) / 1024;
}

async function measure(api: ReturnType<typeof apiClient>, sql: postgres.Sql, pid: number, workflow: string): Promise<Measured> {
  await peakOf(pid, true);
  const started = performance.now();
  const { startRun } = await api.gql(`mutation ($w: String!) { startRun(workflow: $w) { id } }`, { w: workflow });
  let status = 'QUEUED';
  while (!['SUCCEEDED', 'FAILED', 'CANCELLED'].includes(status)) {
    await new Promise((resolve) => setTimeout(resolve, 100));
    status = (await api.gql(`query ($id: ID!) { run(id: $id) { status } }`, { id: startRun.id })).run.status;
  }
  const wallMs = performance.now() - started;
  const peakMb = await peakOf(pid);
  if (status !== 'SUCCEEDED') throw new Error(`the ${workflow} run ended ${status}`);
  const [task] = await sql<{ id: string }[]>`select id from tasks where run_id = ${startRun.id}`;
  const [stored] = await sql<{ bytes: string }[]>`
    select coalesce(sum(octet_length(l) + 1), 0) as bytes
    from task_events e, jsonb_array_elements_text(e.payload -> 'lines') l
    where e.task_id = ${task!.id} and e.kind = 'log' and l not like '[atelier]%'`;
  const notices = await sql<{ line: string }[]>`
    select l as line from task_events e, jsonb_array_elements_text(e.payload -> 'lines') l
    where e.task_id = ${task!.id} and e.kind = 'log' and l like '[atelier] log output truncated: % bytes dropped (an attempt%'`;
  const [cp] = await sql<{ dropped: string }[]>`select coalesce(sum(dropped), 0) as dropped from task_log_bytes where task_id = ${task!.id}`;
  const hostDropped = notices.reduce((n, { line }) => n + Number(/truncated: (\d+) bytes dropped/.exec(line)?.[1] ?? 0), 0);
  return { wallMs, peakMb, stored: Number(stored!.bytes), hostDropped, controlPlaneDropped: Number(cp!.dropped) };
}

export async function logFloodBench(infra: Infra, options: { mib?: number } = {}): Promise<Row[]> {
  const mib = options.mib ?? Number(process.env.BENCH_LOG_FLOOD_MIB ?? 200);
  const dir = await mkdtemp(path.join(os.tmpdir(), 'atelier-bench-logs-'));
  const database = `bench_logs_${Date.now()}`;
  const admin = postgres(infra.pgUrl, { max: 1, onnotice: () => {} });
  await admin.unsafe(`create database ${database}`);
  const url = new URL(infra.pgUrl);
  url.pathname = `/${database}`;
  const sql = postgres(url.toString(), { max: 2, onnotice: () => {} });
  const cp = await startControlPlaneProcess({
    PORT: String(await freePort()),
    DATABASE_URL: url.toString(),
    NATS_URL: infra.natsUrl,
    ATELIER_DATA_DIR: path.join(dir, 'control-plane'),
    ATELIER_ADMIN_TOKEN: TOKEN,
    ATELIER_LOG_LEVEL: 'silent',
  });
  const hostEnv = (name: string) => ({ NATS_URL: infra.natsUrl, ATELIER_URL: cp.url, ATELIER_TOKEN: TOKEN, ATELIER_DATA_DIR: path.join(dir, name) });
  const hosts = [
    await startExecutorProcess(hostEnv('capping'), ['local']),
    await startExecutorProcess(hostEnv('uncapped'), ['uncapped'], [], { ATELIER_MAX_LOG_BYTES: String(1024 ** 3) }),
  ];
  try {
    const api = apiClient(cp.url, TOKEN);
    const published = await api.upload(PUBLISH, {}, 'artifact', await packDirectory(path.join(here, 'modules', 'log-flood')));
    if (published.errors) throw new Error(JSON.stringify(published.errors));
    const workflow = async (name: string, pool: string, to: string) =>
      api.gql(`mutation ($spec: String!) { createWorkflow(spec: $spec) { created } }`, {
        spec: JSON.stringify({ name, tasks: [{ name: 'flood', module: 'bench/log-flood', pool, parameters: { mib, to } }] }),
      });
    await workflow('logs-floor', 'local', 'devnull');
    await workflow('logs-capped', 'local', 'stdout');
    await workflow('logs-uncapped', 'uncapped', 'stdout');
    await measure(api, sql, cp.pid, 'logs-floor'); // warm: the module downloaded and unpacked by the host
    const floor = await measure(api, sql, cp.pid, 'logs-floor');
    const capped = await measure(api, sql, cp.pid, 'logs-capped');
    const uncapped = await measure(api, sql, cp.pid, 'logs-uncapped');
    const written = `${Math.round((Math.floor((mib * 1024 * 1024) / 100) * 100) / MB)} MB written`;
    const rows = (label: string, m: Measured, note: string): Row[] => [
      { bench: 'logs', metric: `${label}: wall time`, value: m.wallMs, unit: 'ms', floor: floor.wallMs, ratio: m.wallMs / floor.wallMs, note },
      { bench: 'logs', metric: `${label}: control-plane peak RSS`, value: m.peakMb, unit: 'MB', floor: floor.peakMb, ratio: m.peakMb / floor.peakMb },
      { bench: 'logs', metric: `${label}: log bytes stored`, value: m.stored / MB, unit: 'MB' },
      {
        bench: 'logs',
        metric: `${label}: log bytes dropped`,
        value: (m.hostDropped + m.controlPlaneDropped) / MB,
        unit: 'MB',
        note: `by the host ${Math.round(m.hostDropped / 1000)} kB, by the control plane ${Math.round(m.controlPlaneDropped / 1000)} kB`,
      },
    ];
    return [
      ...rows('host caps (10 MiB)', capped, `${written}; floor: the same bytes to /dev/null`),
      ...rows('host does not cap (1 GiB), control plane caps', uncapped, written),
    ];
  } finally {
    for (const host of hosts) await host.stop();
    await cp.kill('SIGTERM');
    await sql.end();
    await admin.unsafe(`drop database if exists ${database} with (force)`).catch(() => undefined);
    await admin.end();
    await rm(dir, { recursive: true, force: true });
  }
}

runWhenMain(import.meta.url, async () => {
  const { startNats } = await import('../test/harness/nats');
  const { startPostgres } = await import('../test/harness/postgres');
  const [pg, nats] = await Promise.all([startPostgres(), startNats()]);
  try {
    return await logFloodBench({ pgUrl: pg.url, natsUrl: nats.url });
  } finally {
    await nats.stop();
    await pg.stop();
  }
});
