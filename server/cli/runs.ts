// `atelier run`: start, follow, show, cancel, clone and rerun runs (their logs in logs.ts, search and tracking in
// tracking.ts), and following a run until it ends, which `module push --run --watch` shares.
import { Command, Option } from 'commander';
import { callerTriggers, domains } from '../vocabulary';
import type { Client } from './client';
import { readCliConfig } from './config';
import { CliError, withPassedParams } from './errors';
import { addLogsCommand } from './logs';
import { collect, parseParam, positiveInt, rerunFrom, seconds, wholeNumber } from './options';
import { connection } from './program-options';
import { addTrackingCommands } from './tracking';
import { fetchRun, type RunView, terminalRun, watchRun } from './watch';
import { dagOrder, deadlineLine, formatDuration, oneLine, runLabel } from './watch-view';

const useTty = (plain?: boolean) => Boolean(process.stdout.isTTY) && !plain && !readCliConfig().ci;

/** Follows a run until it ends; the exit status says whether it succeeded. Ctrl-C stops watching, not the run. */
export async function follow(client: Client, runId: string, options: { logs?: boolean; plain?: boolean }): Promise<void> {
  const abort = new AbortController();
  const onSigint = () => abort.abort();
  // `on`, not `once`: log-update's cursor restorer (signal-exit) re-raises SIGINT when it sees no other listener.
  process.on('SIGINT', onSigint);
  try {
    const run = await watchRun(client, runId, { logs: Boolean(options.logs), tty: useTty(options.plain), out: process.stdout, signal: abort.signal });
    if (abort.signal.aborted) {
      console.error(`\nstopped watching run ${runId}; it goes on (\`atelier run cancel ${runId}\` stops it)`);
      process.exitCode = 130;
      return;
    }
    if (run.status !== 'SUCCEEDED') process.exitCode = 1;
  } finally {
    process.off('SIGINT', onSigint);
  }
}

export function runCommand(): Command {
  const run = new Command('run').description('start, follow and manage runs');
  run
    .command('start <workflow>')
    .description('start a run of a workflow (its latest version unless --version)')
    .option('-p, --param <key=value>', 'run parameter (repeatable); the value is parsed as JSON when it can be', parseParam)
    .option('--version <n>', 'workflow version to run', positiveInt)
    .addOption(
      new Option('--trigger <trigger>', 'how the run was started, as recorded (schedules, clones and reruns are recorded by the platform)')
        .choices(callerTriggers.map((t) => t.toLowerCase()))
        .default('cli'),
    )
    .option('--idempotency-key <key>', 'retrying with the same key returns the first run instead of starting another')
    .addOption(
      new Option('--domain <domain>', 'the data domain the run works in (default: the workflow’s; its tasks reuse cached results of this domain only)').choices(
        domains,
      ),
    )
    .option('--experiment <name>', 'the experiment to group the run in (made on first use; default: the workflow’s own)')
    .option('--refresh-cache', 'execute every task even when its result is cached, replacing the entries')
    .option('--cache-namespace <name>', 'experimentation runs: a private cache namespace, neither using nor feeding the shared entries')
    .option('--hot-cluster <name>', 'run the module nodes that name no hot cluster of their own on this one')
    .option('--priority <n>', 'from -10 to 10 (default 0): a full pool dispatches higher-priority runs’ tasks first', wholeNumber)
    .option('--timeout <seconds>', 'the run’s time limit from its admission, up to 604800 (default: the spec’s timeoutSeconds)', seconds)
    .option('-w, --watch', 'follow the run live until it ends; exit 0 only if it succeeds')
    .option('--logs', 'with --watch: print the tasks’ log lines')
    .option('--plain', 'with --watch: plain lines even on a terminal')
    .option('-q, --quiet', 'print only the run id')
    .action(
      async (
        name: string,
        opts: {
          param?: Record<string, unknown>;
          version?: number;
          trigger: string;
          idempotencyKey?: string;
          domain?: string;
          experiment?: string;
          refreshCache?: boolean;
          cacheNamespace?: string;
          hotCluster?: string;
          priority?: number;
          timeout?: number;
          watch?: boolean;
          logs?: boolean;
          plain?: boolean;
          quiet?: boolean;
        },
        command: Command,
      ) => {
        const { client } = connection(command);
        const { startRun } = await client
          .request<{
            startRun: { id: string; status: string; workflow: { name: string }; workflowVersion: { version: number } };
          }>(
            `mutation ($workflow: String!, $version: Int, $parameters: JSON, $trigger: StartTrigger, $key: String, $domain: Domain, $experiment: String, $refresh: Boolean, $ns: String, $hot: String, $priority: Int, $timeout: Float) {
          startRun(workflow: $workflow, version: $version, parameters: $parameters, trigger: $trigger, idempotencyKey: $key, domain: $domain, experiment: $experiment, refreshCache: $refresh, cacheNamespace: $ns, hotCluster: $hot, priority: $priority, timeoutSeconds: $timeout) {
            id status workflow { name } workflowVersion { version }
          }
        }`,
            {
              workflow: name,
              version: opts.version ?? null,
              parameters: opts.param ?? {},
              trigger: opts.trigger.toUpperCase(),
              key: opts.idempotencyKey ?? null,
              domain: opts.domain ?? null,
              experiment: opts.experiment ?? null,
              refresh: Boolean(opts.refreshCache),
              ns: opts.cacheNamespace ?? null,
              hot: opts.hotCluster ?? null,
              priority: opts.priority ?? null,
              timeout: opts.timeout ?? null,
            },
          )
          .catch(withPassedParams(opts.param));
        if (opts.quiet) console.log(startRun.id);
        else console.log(`started run ${startRun.id} (${startRun.workflow.name} v${startRun.workflowVersion.version})`);
        if (opts.watch) await follow(client, startRun.id, opts);
        else if (!opts.quiet) console.log(`follow it with: atelier run watch ${startRun.id}`);
      },
    );
  run
    .command('watch <id>')
    .description('follow a run live until it ends; exit 0 only if it succeeds')
    .option('--logs', 'print the tasks’ log lines')
    .option('--plain', 'plain lines even on a terminal')
    .action(async (id: string, opts: { logs?: boolean; plain?: boolean }, command: Command) => {
      await follow(connection(command).client, id, opts);
    });
  run
    .command('get <id>')
    .alias('show')
    .description('show a run: its status and a table of its tasks')
    .option('--json', 'print the run as JSON')
    .action(async (id: string, opts: { json?: boolean }, command: Command) => {
      const found = await fetchRun(connection(command).client, id);
      if (opts.json) console.log(JSON.stringify(found, null, 2));
      else printRun(found);
      if (terminalRun.has(found.status) && found.status !== 'SUCCEEDED') process.exitCode = 1;
    });
  run
    .command('cancel <id>')
    .description('cancel a run: queued tasks never start, running ones are stopped')
    .action(async (id: string, _opts: unknown, command: Command) => {
      const { cancelRun } = await connection(command).client.request<{ cancelRun: { id: string; status: string; message: string | null } }>(
        `mutation ($id: ID!) { cancelRun(id: $id) { id status message } }`,
        { id },
      );
      console.log(`run ${cancelRun.id}: ${cancelRun.status}${cancelRun.message ? ` (${cancelRun.message})` : ''}`);
    });
  run
    .command('clone <id>')
    .description('start a new run of the same workflow version and pinned module versions, changing some parameters')
    .option('-p, --param <key=value>', 'run parameter to change (repeatable)', parseParam)
    .option('-w, --watch', 'follow the new run live until it ends')
    .option('--plain', 'with --watch: plain lines even on a terminal')
    .action(async (id: string, opts: { param?: Record<string, unknown>; watch?: boolean; plain?: boolean }, command: Command) => {
      const { client } = connection(command);
      const { cloneRun } = await client
        .request<{ cloneRun: { id: string } }>(`mutation ($id: ID!, $p: JSON) { cloneRun(id: $id, parameters: $p) { id } }`, {
          id,
          p: opts.param ?? {},
        })
        .catch(withPassedParams(opts.param));
      console.log(`started run ${cloneRun.id} (a clone of ${id})`);
      if (opts.watch) await follow(client, cloneRun.id, opts);
      else console.log(`follow it with: atelier run watch ${cloneRun.id}`);
    });
  run
    .command('rerun <id>')
    .description('start a new run reusing the succeeded results of run ID and executing again only what is asked')
    .option('--from <what>', 'failed (what did not succeed), all, or nodes (with --node)', 'failed')
    .option('--node <node>', 'with --from nodes: a node to execute again, with everything downstream (repeatable)', collect)
    .option('--module <node=ref>', 'use another module version for a node, e.g. train=ml/train@4 (repeatable)', collect)
    .option('-w, --watch', 'follow the new run live until it ends')
    .option('--plain', 'with --watch: plain lines even on a terminal')
    .action(async (id: string, opts: { from: string; node?: string[]; module?: string[]; watch?: boolean; plain?: boolean }, command: Command) => {
      const from = rerunFrom(opts.from, command.getOptionValueSource('from') === 'default', opts.node);
      const modules = (opts.module ?? []).map((m) => {
        const at = m.indexOf('=');
        if (at < 1) throw new CliError(`--module expects node=namespace/name@version (got "${m}")`);
        return { node: m.slice(0, at), module: m.slice(at + 1) };
      });
      const { client } = connection(command);
      const { rerunRun } = await client.request<{ rerunRun: { id: string; tasks: { node: string; reusedFromTaskId: string | null }[] } }>(
        `mutation ($id: ID!, $from: RerunFrom!, $nodes: [String!], $modules: [ModuleOverride!]) {
          rerunRun(id: $id, from: $from, nodes: $nodes, modules: $modules) { id tasks { node reusedFromTaskId } }
        }`,
        { id, from, nodes: opts.node ?? null, modules: modules.length ? modules : null },
      );
      const reused = rerunRun.tasks.filter((t) => t.reusedFromTaskId).length;
      console.log(`started run ${rerunRun.id}: ${rerunRun.tasks.length - reused} task(s) execute again, ${reused} reused from ${id}`);
      if (reused === rerunRun.tasks.length) console.error(`nothing of ${id} failed: --from all, or --node NODE, executes tasks again`);
      if (opts.watch) await follow(client, rerunRun.id, opts);
      else console.log(`follow it with: atelier run watch ${rerunRun.id}`);
    });
  addLogsCommand(run, (command) => connection(command).client);
  addTrackingCommands(run, (command) => connection(command).client);
  return run;
}

function printRun(r: RunView) {
  const took = r.finishedAt ? ` in ${formatDuration(Date.parse(r.finishedAt) - Date.parse(r.startedAt ?? r.createdAt))}` : '';
  console.log(`run ${r.id}  ${runLabel(r)}  ${r.status}${took}`);
  if (r.message) console.log(`  ${r.message}`);
  const deadline = deadlineLine(r, Date.now());
  if (deadline) console.log(`  ${deadline}`);
  const rows = dagOrder(r.tasks).map((t) => [
    t.node,
    t.status,
    `${t.attempt}/${t.maxAttempts}`,
    t.durationMs !== null ? formatDuration(t.durationMs) : '',
    t.progress !== null ? `${Math.round(t.progress * 100)}%` : '',
    oneLine(t.waitingReason ?? t.message ?? t.progressMessage ?? ''),
  ]);
  const header = ['NODE', 'STATUS', 'ATTEMPT', 'DURATION', 'PROGRESS', 'MESSAGE'];
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((row) => row[i]!.length)));
  for (const row of [header, ...rows])
    console.log(
      row
        .map((cell, i) => (i === row.length - 1 ? cell : cell.padEnd(widths[i]!)))
        .join('  ')
        .trimEnd(),
    );
}
