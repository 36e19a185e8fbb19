// The timeline behind a chaos failure: for each task a counter names (or the open and differing tasks of a run it
// names), what the database recorded (its row, every event but logs), the executions the modules reported and the
// faults, in time order, so a failure says which invariant broke, for which task, and what happened around it.
import type postgres from 'postgres';
import type { Execution, Measured } from './counters';

export interface FaultSpan {
  kind: string;
  target: number;
  /** When the fault began and when its process or server was back (ms since the epoch). */
  from: number;
  to: number;
  error?: string;
}

/**
 * Task ids behind the evidence: the tasks a counter names, and the open or differing tasks of the runs it names; with
 * none of those (evidence kept on request, or a process that exited on its own), the tasks that needed a later attempt
 * or were executed more than once.
 */
export async function suspectTasks(sql: postgres.Sql, evidence: Measured['evidence'], executions: Execution[], limit = 12): Promise<string[]> {
  const ids = new Set<string>();
  for (const t of evidence.tasksSucceededTwice as { task: string }[]) ids.add(t.task);
  for (const t of evidence.attemptsExecutedAfterFinish as { task: string }[]) ids.add(t.task);
  const nodesOf = new Map<string, string[]>();
  for (const r of evidence.runsStuck as { run: string; open: string[] }[])
    nodesOf.set(
      r.run,
      r.open.map((o) => o.split(':')[0]!),
    );
  for (const r of evidence.subscriberStatesDiffering as { run: string; diffs: string[] }[])
    nodesOf.set(r.run, [...(nodesOf.get(r.run) ?? []), ...r.diffs.filter((d) => !d.startsWith('run:')).map((d) => d.split(':')[0]!)]);
  for (const [run, nodes] of nodesOf) {
    const rows = await sql<{ id: string }[]>`select id from tasks where run_id = ${run} and node = any(${nodes})`;
    for (const r of rows) ids.add(r.id);
  }
  if (!ids.size) {
    for (const r of await sql<{ id: string }[]>`select id from tasks where attempt > 1 limit ${limit}`) ids.add(r.id);
    const times = new Map<string, number>();
    for (const x of executions) times.set(x.task, (times.get(x.task) ?? 0) + 1);
    for (const [task, n] of times) if (n > 1) ids.add(task);
  }
  return [...ids].slice(0, limit);
}

/** One block of lines per task: its row, then its events, executions and the faults, in time order. */
export async function taskTimelines(sql: postgres.Sql, taskIds: string[], executions: Execution[], faults: FaultSpan[]): Promise<string> {
  if (!taskIds.length) return '';
  const tasks = await sql<
    {
      id: string;
      run_id: string;
      node: string;
      status: string;
      attempt: number;
      host: string | null;
      queued_at: Date | null;
      started_at: Date | null;
      finished_at: Date | null;
    }[]
  >`select id, run_id, node, status, attempt, host, queued_at, started_at, finished_at from tasks where id = any(${taskIds})`;
  // `at` is the host's time of the event; the row id and the inserting transaction (xmin) say when it was recorded.
  const events = await sql<
    { task_id: string; attempt: number; seq: string; kind: string; host: string | null; state: string | null; at: Date; id: string; tx: string }[]
  >`
    select task_id, attempt, seq::text, kind, payload->>'host' as host, payload->'outcome'->>'state' as state, at, id::text, xmin::text as tx
    from task_events where task_id = any(${taskIds}) and kind <> 'log'
    union all -- a start its result's row carries (server/orchestrator/event-rows.ts)
    select task_id, attempt, payload->'started'->>'seq', 'started', payload->>'host', null, (payload->'started'->>'at')::timestamptz, id::text, xmin::text
    from task_events where task_id = any(${taskIds}) and kind = 'result' and payload ? 'started'
    order by at, id`;
  const stamp = (ms: number) => new Date(ms).toISOString().slice(11, 23);
  const blocks: string[] = [];
  for (const t of tasks) {
    const lines: [number, string][] = [];
    if (t.queued_at) lines.push([t.queued_at.getTime(), 'queued (latest attempt)']);
    for (const e of events.filter((e) => e.task_id === t.id))
      lines.push([
        e.at.getTime(),
        `event ${e.kind}${e.state ? ` ${e.state}` : ''} attempt ${e.attempt} seq ${e.seq}${e.host ? ` host ${e.host}` : ''} (row ${e.id}, tx ${e.tx})`,
      ]);
    for (const x of executions.filter((x) => x.task === t.id))
      lines.push([x.time, `execution of attempt ${x.attempt} began${x.pid ? ` (pid ${x.pid})` : ''}, seen by ${x.sources.join(', ')}`]);
    if (t.finished_at) lines.push([t.finished_at.getTime(), `task finished ${t.status}`]);
    const from = Math.min(...lines.map(([at]) => at)) - 15_000;
    const to = Math.max(...lines.map(([at]) => at)) + 15_000;
    for (const f of faults.filter((f) => f.to >= from && f.from <= to))
      lines.push([
        f.from,
        `FAULT ${f.kind}${f.kind.includes('control') || f.kind.includes('executor') ? ` #${f.target}` : ''} until ${stamp(f.to)}${f.error ? ` (${f.error})` : ''}`,
      ]);
    lines.sort((a, b) => a[0] - b[0]);
    blocks.push(
      [
        `task ${t.id} (${t.node} of run ${t.run_id}): ${t.status}#${t.attempt}${t.host ? ` on ${t.host}` : ''}`,
        ...lines.map(([at, text]) => `  ${stamp(at)} ${text}`),
      ].join('\n'),
    );
  }
  return blocks.join('\n');
}
