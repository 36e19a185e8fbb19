// `atelier run logs ID`: the log lines of a run's tasks; with --follow, every line of the run from its start and then
// live (runEvents from its first event), until the run ends, exiting 0 only if it succeeded — `kubectl logs -f` for a run.
// A connection lost on the way (the control plane restarted) is retried from the last event received, not from the
// first again: every line once.
import type { Command } from 'commander';
import type { Client } from './client';
import { ApiError } from './errors';
import { positiveInt } from './options';
import { noSuchRun, terminalRun } from './watch';

const LOG_EVENTS = /* GraphQL */ `
  subscription ($runId: ID!, $after: Int!) {
    runEvents(runId: $runId, after: $after) {
      __typename
      ... on RunStatusEvent { runStatus seq }
      ... on TaskStatusEvent { node status attempt seq }
      ... on TaskLogEvent { node stream lines seq }
      ... on TaskProgressEvent { seq }
      ... on TaskMetricEvent { seq }
    }
  }
`;

type LogEvent = { seq: number } & (
  | { __typename: 'RunStatusEvent'; runStatus: string }
  | { __typename: 'TaskStatusEvent'; node: string; status: string; attempt: number }
  | { __typename: 'TaskLogEvent'; node: string; stream: string; lines: string[] }
  | { __typename: string }
);

interface RunTasks {
  tasks: { node: string; logs?: { stream: string; line: string }[] }[];
}

export function addLogsCommand(run: Command, clientOf: (command: Command) => Client): void {
  run
    .command('logs <id>')
    .description('print the log lines of a run’s tasks (the current attempt of each); -f follows the run live until it ends')
    .option('--node <node>', 'only this task')
    .option('--attempt <n>', 'this attempt instead of the current one', positiveInt)
    .option('--limit <n>', 'most lines per task', positiveInt, 1000)
    .option('-f, --follow', 'every line from the run’s start, then live until it ends (exit 0 only if it succeeds)')
    .action(async (id: string, opts: { node?: string; attempt?: number; limit: number; follow?: boolean }, command: Command) => {
      const client = clientOf(command);
      const { run: found } = await client.request<{ run: RunTasks | null }>(
        opts.follow
          ? `query ($id: ID!) { run(id: $id) { tasks { node } } }`
          : `query ($id: ID!, $attempt: Int, $limit: Int) { run(id: $id) { tasks { node logs(attempt: $attempt, limit: $limit) { stream line } } } }`,
        { id, ...(opts.follow ? {} : { attempt: opts.attempt ?? null, limit: opts.limit }) },
      );
      if (!found) throw noSuchRun(id);
      const tasks = opts.node ? found.tasks.filter((t) => t.node === opts.node) : found.tasks;
      if (opts.node && !tasks.length)
        throw new ApiError(`Run ${id} has no task "${opts.node}"; its tasks: ${found.tasks.map((t) => t.node).join(', ')}`, 'NOT_FOUND');
      const line = (node: string, text: string) => console.log(opts.node ? text : `[${node}] ${text}`);
      if (!opts.follow) {
        for (const task of tasks) for (const l of task.logs ?? []) line(task.node, l.line);
        return;
      }
      let status = '';
      // A line belongs to its task's attempt running when it was logged (events come in the order they happened).
      const attempts = new Map<string, number>();
      const shown = (node: string) => (!opts.node || node === opts.node) && (opts.attempt === undefined || (attempts.get(node) ?? 1) === opts.attempt);
      // The cursor: a retried subscription sends these variables again (client.subscribe), so it resumes after it.
      const variables = { runId: id, after: 0 };
      await client.subscribe<{ runEvents: LogEvent }>(LOG_EVENTS, variables, ({ runEvents: e }) => {
        if (e.seq <= variables.after) return; // already printed (a resend across the reconnection)
        variables.after = e.seq;
        if (e.__typename === 'RunStatusEvent') status = (e as { runStatus: string }).runStatus;
        else if (e.__typename === 'TaskLogEvent') {
          const log = e as Extract<LogEvent, { __typename: 'TaskLogEvent' }>;
          if (shown(log.node)) for (const l of log.lines) line(log.node, l);
        } else if (e.__typename === 'TaskStatusEvent') {
          const s = e as Extract<LogEvent, { __typename: 'TaskStatusEvent' }>;
          if (s.status !== 'RUNNING' || s.attempt === attempts.get(s.node)) return;
          attempts.set(s.node, s.attempt);
          // A retry's lines follow its predecessor's: say where one attempt ends and the next begins.
          if (s.attempt > 1 && opts.attempt === undefined && shown(s.node)) line(s.node, `── attempt ${s.attempt} ──`);
        }
      });
      if (terminalRun.has(status) && status !== 'SUCCEEDED') process.exitCode = 1;
    });
}
