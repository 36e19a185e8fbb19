// What storing S1's run events costs Postgres, by the statement's form: the backend's CPU (/proc) for a run's rows of
// events (10,000 tasks: 4 events a task, up to 64 to a row, ~35 rows a statement as S1 sends them) stored into a
// migrated database, the forms in turns. `whole`: every row in one jsonb array parameter (jsonb_to_recordset), as
// before session 35; `per row`: each row its own jsonb parameter (run-event-log.ts now).
// `npx tsx bench/peers/run-events-probe.ts [rounds]`.
import { readFileSync } from 'node:fs';
import postgres from 'postgres';
import { startPostgres } from '../../test/harness/postgres';
import { type Row, runWhenMain } from '../lib';

const TASKS = 10_000;
const ROWS_A_STATEMENT = 35;

/** A task's events as S1 stores them: queued, running, its progress, succeeded. */
function taskEvents(runId: string, i: number): object[] {
  const at = new Date(Date.UTC(2026, 0, 1, 0, 0, 0, i)).toISOString();
  const taskId = `00000000-0000-4000-8000-${String(i).padStart(12, '0')}`;
  const status = (s: string) => ({ at, kind: 'task-status', node: `t${i}`, runId, reason: null, status: s, taskId, attempt: 1, message: null });
  return [status('QUEUED'), status('RUNNING'), { at, kind: 'task-progress', node: `t${i}`, runId, taskId, message: null, fraction: 1 }, status('SUCCEEDED')];
}

async function probe(rounds: number): Promise<Row[]> {
  const pg = await startPostgres({ migrated: true });
  const sql = postgres(pg.url, { max: 1, onnotice: () => {} });
  try {
    const [experiment] = await sql<{ id: string }[]>`insert into experiments (name) values ('run-events-probe') returning id`;
    const [run] = await sql<
      { id: string }[]
    >`insert into runs (experiment_id, status, trigger, domain) values (${experiment!.id}, 'RUNNING', 'EXTERNAL', 'adhoc') returning id`;
    const runId = run!.id;
    const events = Array.from({ length: TASKS }, (_, i) => taskEvents(runId, i)).flat();
    const rows: { last: number; event: { events: object[] } }[] = [];
    for (let i = 0; i < events.length; i += 64) rows.push({ last: i + 64, event: { events: events.slice(i, i + 64) } });
    const statements: (typeof rows)[] = [];
    for (let i = 0; i < rows.length; i += ROWS_A_STATEMENT) statements.push(rows.slice(i, i + ROWS_A_STATEMENT));
    const forms: Record<string, (groups: typeof rows) => Promise<unknown>> = {
      whole: (groups) =>
        sql.unsafe(
          `with bumped as (update runs set event_seq = event_seq + $1 where id = $2 returning event_seq),
            stored as (insert into run_events (run_id, seq, event) select $2::uuid, bumped.event_seq - $1 + g.last, g.event
              from bumped, jsonb_to_recordset($3::text::jsonb) as g(last int, event jsonb))
           select event_seq as last from bumped`,
          [groups.at(-1)!.last, runId, JSON.stringify(groups)],
        ),
      'per row': (groups) => {
        const padded = 2 ** Math.ceil(Math.log2(groups.length));
        const values = Array.from({ length: padded }, (_, i) => `($${4 + 2 * i}::int, $${5 + 2 * i}::text::jsonb)`).join(', ');
        const params = Array.from({ length: padded }, (_, i) => [groups[i]?.last ?? 0, groups[i] ? JSON.stringify(groups[i]!.event) : null]).flat();
        return sql.unsafe(
          `with bumped as (update runs set event_seq = event_seq + $1 where id = $2 returning event_seq),
            stored as (insert into run_events (run_id, seq, event) select $3::uuid, bumped.event_seq - $1 + g.last, g.event
              from bumped, (values ${values}) as g(last, event) where g.event is not null)
           select event_seq as last from bumped`,
          [groups.at(-1)!.last, runId, runId, ...params],
        );
      },
    };
    const [backend] = await sql<{ pid: number }[]>`select pg_backend_pid() as pid`;
    const pid = backend!.pid;
    const cpuMs = () => {
      const f = readFileSync(`/proc/${pid}/stat`, 'utf8');
      const fields = f.slice(f.lastIndexOf(')') + 2).split(' ');
      return (Number(fields[11]) + Number(fields[12])) * 10;
    };
    const out: Record<string, number[]> = {};
    for (let round = 0; round < rounds; round++)
      for (const [name, store] of Object.entries(forms)) {
        await sql`truncate run_events`;
        const before = cpuMs();
        for (const groups of statements) await store(groups);
        (out[name] ??= []).push(cpuMs() - before);
      }
    return Object.entries(out).map(([name, ms]) => {
      const sorted = [...ms].sort((a, b) => a - b);
      const median = sorted[Math.floor(sorted.length / 2)]!;
      console.log(`${name}: ${ms.join(', ')} ms of backend CPU for ${TASKS} tasks' events (${statements.length} statements); median ${median}`);
      return { bench: 'run-events-probe', metric: `${name} CPU a task`, value: (median / TASKS) * 1000, unit: 'µs' } as Row;
    });
  } finally {
    await sql.end();
    await pg.stop();
  }
}

runWhenMain(import.meta.url, () => probe(Number(process.argv[2] ?? 7)));
