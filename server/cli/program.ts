// The `atelier` command line's program: global connection options (URL, token) and the commands (start, executor,
// module, workflow, run, dataset, declassify, audit…), built without running (main.ts runs it; tests parse with it).
import { readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { Command, Option } from 'commander';
import { callerTriggers, domains } from '../vocabulary';
import { cacheCommand } from './cache';
import { type Client, createClient } from './client';
import { clusterCommand, listExecutors } from './cluster';
import { type CliConfig, readCliConfig } from './config';
import { costsCommand } from './costs';
import { datasetCommand } from './dataset';
import { deployCommand } from './deploy';
import { CliError, withPassedParams } from './errors';
import { addExamples } from './examples';
import { experimentCommand } from './experiments';
import { auditCommand, declassifyCommand } from './governance';
import { addLogsCommand } from './logs';
import { modelCommand } from './models';
import { moduleCommand, teamCommands } from './modules';
import { alertCommand, monitorCommand, observeCommand } from './monitoring';
import { collect, parseParam, positiveInt, rerunFrom, seconds, wholeNumber } from './options';
import { addConnectionOptions, connectionOptions, shareProgramOptions } from './program-options';
import { scheduleCommand } from './schedule';
import { tokenCommand } from './token';
import { addTrackingCommands } from './tracking';
import { triggerCommand } from './triggers';
import { fetchRun, type RunView, terminalRun, watchRun } from './watch';
import { dagOrder, deadlineLine, formatDuration, oneLine, runLabel } from './watch-view';
import { webhookCommand } from './webhooks';

/** --token, then ATELIER_TOKEN, then the admin token a control plane on this machine saved in its data dir. */
function resolveToken(flag: string | undefined, config: CliConfig = readCliConfig()): string | null {
  if (flag) return flag;
  if (config.token !== undefined) return config.token;
  try {
    return readFileSync(config.adminTokenFile, 'utf8').trim() || null;
  } catch {
    return null; // the server's UNAUTHENTICATED answer then says what to set
  }
}

function connection(command: Command): { client: Client; url: string; token: string | null } {
  const opts = connectionOptions(command);
  const url = opts.url.replace(/\/+$/, '');
  const token = resolveToken(opts.token);
  return { client: createClient({ url, token }), url, token };
}

const useTty = (plain?: boolean) => Boolean(process.stdout.isTTY) && !plain && !readCliConfig().ci;

/** Follows a run until it ends; the exit status says whether it succeeded. Ctrl-C stops watching, not the run. */
async function follow(client: Client, runId: string, options: { logs?: boolean; plain?: boolean }): Promise<void> {
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

export function buildProgram(): Command {
  const version = (JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }).version;
  const program = new Command('atelier').description('Atelier: versioned ML modules, workflows and runs, from the command line.').version(version);
  addConnectionOptions(program);

  program
    .command('start')
    .description('run the control plane (as `npm start`); configured by PORT, DATABASE_URL, NATS_URL, ATELIER_DATA_DIR…')
    .action(async () => {
      await import('../main');
    });

  const executor = program
    .command('executor')
    .description('run a standalone executor host taking tasks from NATS (needs NATS_URL); or list hosts, or scaffold an executor')
    .option('--pool <name>', 'pool whose tasks to run (repeatable; default: local)', collect)
    .option('--pools <a,b>', 'pools whose tasks to run, comma-separated (adds to --pool)')
    .option('--gpus <n>', 'GPUs a task may use on this host, advertised so GPU tasks are routed here', positiveInt)
    .option('--concurrency <n>', 'most tasks run at once (default: number of CPUs)', positiveInt)
    .option('--execute-with <executor>', 'run every task with this executor, whatever the task names (a kubernetes-gpu hot cluster’s pods use local)')
    .option('--hot-cluster <name>', 'a hot cluster this host is part of, announced in its heartbeats (repeatable)', collect)
    .action(
      async (opts: { pool?: string[]; pools?: string; gpus?: number; concurrency?: number; executeWith?: string; hotCluster?: string[] }, command: Command) => {
        const { url, token } = connection(command);
        const pools = [
          ...(opts.pool ?? []),
          ...(opts.pools ?? '')
            .split(',')
            .map((p) => p.trim())
            .filter(Boolean),
        ];
        const { runExecutor } = await import('./executor'); // loads the executors and NATS: only this command needs them
        await runExecutor({
          url,
          token,
          pools: pools.length ? pools : ['local'],
          gpus: opts.gpus,
          concurrency: opts.concurrency,
          executeWith: opts.executeWith,
          hotClusters: opts.hotCluster,
        });
      },
    );
  executor
    .command('list')
    .description('executor pools and their live hosts (capacity, running, GPUs, hot clusters), from the hosts’ heartbeats')
    .action(async (_opts: unknown, command: Command) => {
      await listExecutors(connection(command).client);
    });
  executor
    .command('new <name>')
    .description('scaffold an executor plugin (index.ts, a contract test, a README) that passes the testkit as written')
    .option('--dir <dir>', 'parent folder (default: the repository’s executors/)')
    .action(async (name: string, opts: { dir?: string }) => {
      const { scaffoldExecutor } = await import('./scaffold');
      printScaffolded(await scaffoldExecutor(name, opts.dir));
    });

  program
    .command('deployer')
    .description('deployer plugins (serving model versions): scaffold one')
    .command('new <name>')
    .alias('scaffold')
    .description('scaffold a deployer plugin (index.ts, a contract test, a README) that passes the deployer testkit as written')
    .option('--dir <dir>', 'parent folder (default: the repository’s plugins/deployers/)')
    .action(async (name: string, opts: { dir?: string }) => {
      const { scaffoldDeployer } = await import('./deployer-scaffold');
      printScaffolded(await scaffoldDeployer(name, opts.dir));
    });

  program.addCommand(moduleCommand((command) => connection(command).client, follow));
  for (const c of teamCommands((command) => connection(command).client)) program.addCommand(c);

  const workflow = program.command('workflow').description('create and inspect workflows');
  workflow
    .command('create <file>')
    .description('create a workflow, or a new version of it, from a YAML or JSON spec')
    .option('--team <name>', 'the team that owns a new workflow, whose members may publish its versions (default: your only team)')
    .action(async (file: string, opts: { team?: string }, command: Command) => {
      const { client } = connection(command);
      const spec = await readFile(file, 'utf8').catch((error: NodeJS.ErrnoException) => {
        throw new CliError(`cannot read ${file}: ${error.code === 'ENOENT' ? 'no such file' : error.message}`);
      });
      const { createWorkflow: r } = await client.request<{
        createWorkflow: { created: boolean; workflow: { name: string; domain: string; team: { name: string } | null }; version: { version: number } };
      }>(
        `mutation ($spec: String!, $team: String) { createWorkflow(spec: $spec, team: $team) { created workflow { name domain team { name } } version { version } } }`,
        { spec, team: opts.team ?? null },
      );
      console.log(
        r.created
          ? `created workflow ${r.workflow.name} version ${r.version.version} (${r.workflow.domain}${r.workflow.team ? `, team ${r.workflow.team.name}` : ''})`
          : `unchanged: workflow ${r.workflow.name} is already at version ${r.version.version} with this spec`,
      );
    });
  workflow
    .command('list')
    .description('list workflows')
    .action(async (_opts: unknown, command: Command) => {
      const { client } = connection(command);
      const { workflows } = await client.request<{ workflows: { name: string; domain: string; latestVersion: { version: number } }[] }>(
        `{ workflows { name domain latestVersion { version } } }`,
      );
      if (!workflows.length) console.log('no workflows yet: create one with `atelier workflow create FILE`');
      for (const w of workflows) console.log(`${w.name}  v${w.latestVersion.version}  ${w.domain}`);
    });

  const run = program.command('run').description('start, follow and manage runs');
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
  program.addCommand(triggerCommand(connection));
  const client = (command: Command) => connection(command).client;
  const groups = [experimentCommand, scheduleCommand, webhookCommand, monitorCommand, alertCommand, observeCommand, cacheCommand, costsCommand, clusterCommand];
  for (const group of [...groups, datasetCommand, declassifyCommand, auditCommand, modelCommand, deployCommand, tokenCommand])
    program.addCommand(group(client));
  // After every command is added: those built apart (above) inherit no settings.
  shareProgramOptions(program);
  addExamples(program);
  return program;
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

/** What a scaffold command wrote, and the command that checks it (its contract test, the second file). */
function printScaffolded(files: string[]): void {
  console.log(`wrote ${files.join('\n      ')}\ncheck it with: npx vitest run ${path.relative(process.cwd(), files[1]!)}`);
}
