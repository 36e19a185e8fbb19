// The `atelier` command line's program: global connection options (URL, token) and the commands (start, executor,
// module, workflow, run, dataset, declassify, audit…), built without running (main.ts runs it; tests parse with it).
// Given the command line, only the command it names is built (with its subcommands, options and examples): building
// all ~145 commands cost each CLI start ~10 ms of CPU, and a command's own help, parsing and errors need no other.
// A line that names no known command (`--help`, `help`, a typo) gets them all, for the full list and suggestions.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { Command } from 'commander';
import { cacheCommand } from './cache';
import { clusterCommand, listExecutors } from './cluster';
import { costsCommand } from './costs';
import { datasetCommand } from './dataset';
import { deployCommand } from './deploy';
import { addExamples } from './examples';
import { experimentCommand } from './experiments';
import { auditCommand, declassifyCommand } from './governance';
import { modelCommand } from './models';
import { moduleCommand, teamCommands } from './modules';
import { alertCommand, monitorCommand, observeCommand } from './monitoring';
import { collect, positiveInt } from './options';
import { addConnectionOptions, connection, shareProgramOptions } from './program-options';
import { follow, runCommand } from './runs';
import { scheduleCommand } from './schedule';
import { tokenCommand } from './token';
import { triggerCommand } from './triggers';
import { webhookCommand } from './webhooks';
import { workflowCommand } from './workflows';

const client = (command: Command) => connection(command).client;
const each = (...names: string[]) => names;

/** Every top-level command: the names a builder makes (checked by test/cli/lazy-program.test.ts), in help's order. */
const COMMANDS: [names: string[], build: () => Command[]][] = [
  [each('start'), () => [startCommand()]],
  [each('executor'), () => [executorCommand()]],
  [each('deployer'), () => [deployerCommand()]],
  [each('module'), () => [moduleCommand(client, follow)]],
  [each('team', 'namespace', 'user', 'service-account'), () => teamCommands(client)],
  [each('workflow'), () => [workflowCommand()]],
  [each('run'), () => [runCommand()]],
  [each('trigger'), () => [triggerCommand(connection)]],
  ...(
    [
      ['experiment', experimentCommand],
      ['schedule', scheduleCommand],
      ['webhook', webhookCommand],
      ['monitor', monitorCommand],
      ['alert', alertCommand],
      ['observe', observeCommand],
      ['cache', cacheCommand],
      ['costs', costsCommand],
      ['cluster', clusterCommand],
      ['dataset', datasetCommand],
      ['declassify', declassifyCommand],
      ['audit', auditCommand],
      ['model', modelCommand],
      ['deploy', deployCommand],
      ['token', tokenCommand],
    ] as const
  ).map(([name, group]): [string[], () => Command[]] => [[name], () => [group(client)]]),
];

/**
 * The top-level command a command line (`process.argv`) names, past the program's own options; none when the line
 * asks the program itself for its help or version before naming one (`atelier --help run` is the program's help).
 */
export function commandNamed(argv: readonly string[]): string | undefined {
  for (let i = 2; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === '--url' || arg === '--token') i++;
    else if (['-h', '--help', '-V', '--version', '--'].includes(arg)) return undefined;
    else if (!arg.startsWith('-')) return arg;
  }
  return undefined;
}

/** The program; with `argv`, only the command it names (every command when it names none that exists). */
export function buildProgram(argv?: readonly string[]): Command {
  const version = (JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }).version;
  const program = new Command('atelier').description('Atelier: versioned ML modules, workflows and runs, from the command line.').version(version);
  addConnectionOptions(program);
  const named = argv && commandNamed(argv);
  const wanted = COMMANDS.find(([names]) => named !== undefined && names.includes(named));
  for (const [, build] of wanted ? [wanted] : COMMANDS) for (const command of build()) program.addCommand(command);
  // After every command is added: those built apart inherit no settings.
  shareProgramOptions(program);
  addExamples(program, { complete: !wanted });
  return program;
}

function startCommand(): Command {
  return new Command('start')
    .description('run the control plane (as `npm start`); configured by PORT, DATABASE_URL, NATS_URL, ATELIER_DATA_DIR…')
    .action(async () => {
      await import('../main');
    });
}

function executorCommand(): Command {
  const executor = new Command('executor')
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
  return executor;
}

function deployerCommand(): Command {
  const deployer = new Command('deployer').description('deployer plugins (serving model versions): scaffold one');
  deployer
    .command('new <name>')
    .alias('scaffold')
    .description('scaffold a deployer plugin (index.ts, a contract test, a README) that passes the deployer testkit as written')
    .option('--dir <dir>', 'parent folder (default: the repository’s plugins/deployers/)')
    .action(async (name: string, opts: { dir?: string }) => {
      const { scaffoldDeployer } = await import('./deployer-scaffold');
      printScaffolded(await scaffoldDeployer(name, opts.dir));
    });
  return deployer;
}

/** What a scaffold command wrote, and the command that checks it (its contract test, the second file). */
function printScaffolded(files: string[]): void {
  console.log(`wrote ${files.join('\n      ')}\ncheck it with: npx vitest run ${path.relative(process.cwd(), files[1]!)}`);
}
