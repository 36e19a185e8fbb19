// The task/event wire on real Postgres + NATS (issue 21, items 1 and 2): how many SQL statements a task and a
// chain edge cost, and how long an edge takes from the parent's finish to the child's start. Statements are
// counted from the server's own log (log_statement = all, for the counting runs only; the bench's own polling
// connection is told apart by its application_name), so nothing in the app is instrumented.
import { appendFile, readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import postgres from 'postgres';
import { packDirectory } from '../server/artifacts/archive';
import { startTestApp } from '../test/harness/app';
import { PUBLISH } from '../test/harness/client';
import { startExecutorProcess } from '../test/harness/executor-process';
import { percentile, type Row } from './lib';

const here = path.dirname(fileURLToPath(import.meta.url));
const BENCH_APP = 'wire-bench';

export interface WireInfra {
  pgUrl: string;
  natsUrl: string;
  /** The Postgres server's log file, for counting statements. */
  pgLogFile: string;
}

const chain = (name: string, length: number) => ({
  name,
  tasks: Array.from({ length }, (_, i) => ({ name: `c${i}`, module: 'bench/noop', ...(i ? { dependsOn: [`c${i - 1}`] } : {}) })),
});
const fan = (name: string, width: number) => ({ name, tasks: Array.from({ length: width }, (_, i) => ({ name: `f${i}`, module: 'bench/noop' })) });

export async function wireBench(infra: WireInfra, options: { width?: number; length?: number } = {}): Promise<Row[]> {
  const width = options.width ?? 500;
  const length = options.length ?? 100;
  // The periodic sweep (retries due, lost hosts, admission) is a fallback, not part of an edge: with the tests' 100 ms
  // tick it added ~9 statements per edge on a loaded machine, more the slower the edge. A 10 s tick keeps it out.
  const t = await startTestApp({ DATABASE_URL: infra.pgUrl, NATS_URL: infra.natsUrl, ATELIER_TICK_MS: '10000' });
  const executor = await startExecutorProcess(
    { NATS_URL: infra.natsUrl, ATELIER_URL: t.url, ATELIER_TOKEN: t.app.adminToken, ATELIER_DATA_DIR: `${t.dataDir}/executor` },
    ['noop'],
    ['--concurrency', '256'],
  );
  const sql = postgres(infra.pgUrl, { max: 1, onnotice: () => {}, connection: { application_name: BENCH_APP } });
  const logging = async (on: boolean) => {
    await sql.unsafe(on ? `alter system set log_statement = 'all'` : `alter system reset log_statement`);
    await sql.unsafe(`alter system set log_line_prefix = '%a|'`);
    await sql`select pg_reload_conf()`;
    await new Promise((r) => setTimeout(r, 200)); // every backend reads the new settings at its next command
  };
  const finished = async (runId: string) => {
    for (const deadline = Date.now() + 300_000; Date.now() < deadline; ) {
      const [row] = await sql<{ status: string }[]>`select status from runs where id = ${runId}`;
      if (row && !['QUEUED', 'RUNNING'].includes(row.status)) {
        if (row.status !== 'SUCCEEDED') throw new Error(`run ${runId} ended ${row.status}`);
        return;
      }
      await new Promise((r) => setTimeout(r, 20));
    }
    throw new Error(`run ${runId} did not finish in 5 minutes`);
  };
  /** Statements the app sent while `fn` ran: lines of the server log not from this bench's connection. */
  const counted = async (fn: () => Promise<void>) => {
    const from = (await stat(infra.pgLogFile)).size;
    await fn();
    await new Promise((r) => setTimeout(r, 500)); // stragglers: the last events' acks, the relay's last pass
    const text = (await readFile(infra.pgLogFile)).subarray(from).toString();
    const lines = text.split('\n').filter((l) => !l.startsWith(`${BENCH_APP}|`) && /LOG: {2}(statement|execute)/.test(l));
    // WIRE_BENCH_DUMP=<file> keeps the statements themselves, to see where they go.
    if (process.env.WIRE_BENCH_DUMP) await appendFile(process.env.WIRE_BENCH_DUMP, `${lines.join('\n')}\n`);
    return lines.length;
  };
  const start = async (workflow: string) =>
    (await t.api.gql(`mutation ($w: String!) { startRun(workflow: $w) { id } }`, { w: workflow })).startRun.id as string;
  try {
    const published = await t.api.upload(PUBLISH, {}, 'artifact', await packDirectory(path.join(here, 'modules', 'noop')));
    if (published.errors) throw new Error(JSON.stringify(published.errors));
    await t.createWorkflow(fan('wire-fan', width));
    await t.createWorkflow(chain('wire-chain', length));
    await finished(await start('wire-chain')); // warm-up: module fetched, statements prepared

    // Edge latency, without statement logging: child start − parent finish, both stamped by the executor host.
    const runId = await start('wire-chain');
    await finished(runId);
    const rows = await sql<{ node: string; started_at: Date; finished_at: Date }[]>`
      select node, started_at, finished_at from tasks where run_id = ${runId}`;
    const byNode = new Map(rows.map((r) => [r.node, r]));
    const edges: number[] = [];
    for (let i = 1; i < length; i++) edges.push(byNode.get(`c${i}`)!.started_at.getTime() - byNode.get(`c${i - 1}`)!.finished_at.getTime());

    await logging(true);
    let fanStatements = 0;
    let chainStatements = 0;
    try {
      fanStatements = await counted(async () => finished(await start('wire-fan')));
      chainStatements = await counted(async () => finished(await start('wire-chain')));
    } finally {
      await logging(false);
    }
    return [
      { bench: 'wire', metric: `statements per task (${width} independent no-op tasks)`, value: fanStatements / width, unit: 'statements' },
      { bench: 'wire', metric: `statements per edge (chain of ${length})`, value: chainStatements / length, unit: 'statements' },
      { bench: 'wire', metric: 'chain edge, child start − parent finish, p50', value: percentile(edges, 50), unit: 'ms', note: `${edges.length} edges` },
      { bench: 'wire', metric: 'chain edge, child start − parent finish, p99', value: percentile(edges, 99), unit: 'ms' },
    ];
  } finally {
    await sql.end();
    await executor.stop();
    await t.stop();
  }
}
