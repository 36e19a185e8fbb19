// `atelier cluster …`: create, list and end hot clusters; and `atelier executor list`: the executor hosts and pools
// the control plane hears from.
import { Command } from 'commander';
import type { Client } from './client';
import { positiveInt } from './options';

interface ClusterView {
  name: string;
  executor: string;
  pool: string;
  state: string;
  message: string | null;
  spec: Record<string, unknown>;
  idleTimeoutMs: number;
  lastUsedAt: string | null;
  team: { name: string } | null;
}

const CLUSTER_FIELDS = 'name executor pool state message spec idleTimeoutMs lastUsedAt team { name }';

const describeCluster = (c: ClusterView) =>
  `${c.name}  ${c.state.padEnd(8)}  ${c.executor} on pool ${c.pool}  ${JSON.stringify(c.spec)}  idle timeout ${Math.round(c.idleTimeoutMs / 1000)} s${c.team ? `  team ${c.team.name}` : ''}${c.message ? `\n    ${c.message}` : ''}`;

/** `connect` makes the API client from the global options (--url, --token), known only when a sub-command runs. */
export function clusterCommand(connect: (command: Command) => Client): Command {
  const cluster = new Command('cluster').description('hot clusters: compute kept warm between tasks (tasks ask with `hotCluster: NAME`)');

  cluster
    .command('create <name>')
    .description('ask the hosts of a pool to keep a hot cluster warm')
    .requiredOption('--executor <name>', 'executor that keeps it: local, databricks or kubernetes-gpu')
    .option('--pool <name>', 'pool whose hosts keep it (default: the executor’s name)')
    .option('--workers <n>', 'local: warm worker processes', positiveInt)
    .option('--cluster-id <id>', 'databricks: the all-purpose cluster tasks are submitted to')
    .option('--replicas <n>', 'kubernetes-gpu: executor-host pods kept running', positiveInt)
    .option('--idle-timeout <seconds>', 'ended after this long without a task', positiveInt, 1800)
    .option('--team <name>', 'the team that owns it, whose members may end it (default: your only team)')
    .action(
      async (
        name: string,
        opts: { executor: string; pool?: string; workers?: number; clusterId?: string; replicas?: number; idleTimeout: number; team?: string },
        command: Command,
      ) => {
        const spec = Object.fromEntries(
          Object.entries({ workers: opts.workers, clusterId: opts.clusterId, replicas: opts.replicas }).filter(([, v]) => v !== undefined),
        );
        const { createHotCluster } = await connect(command).request<{ createHotCluster: ClusterView }>(
          `mutation ($name: String!, $executor: String!, $pool: String, $spec: JSON, $idle: Int, $team: String) {
          createHotCluster(name: $name, executor: $executor, pool: $pool, spec: $spec, idleTimeoutSeconds: $idle, team: $team) { ${CLUSTER_FIELDS} }
        }`,
          { name, executor: opts.executor, pool: opts.pool ?? null, spec, idle: opts.idleTimeout, team: opts.team ?? null },
        );
        console.log(`created hot cluster ${describeCluster(createHotCluster)}\nrun tasks on it with \`hotCluster: ${name}\` in a workflow node`);
      },
    );

  cluster
    .command('list')
    .description('live hot clusters (with --all, ended ones too)')
    .option('--all', 'include ended clusters')
    .action(async (opts: { all?: boolean }, command: Command) => {
      const { hotClusters } = await connect(command).request<{ hotClusters: ClusterView[] }>(
        `query ($all: Boolean) { hotClusters(includeEnded: $all) { ${CLUSTER_FIELDS} } }`,
        { all: Boolean(opts.all) },
      );
      if (!hotClusters.length) console.log('no hot clusters: create one with `atelier cluster create NAME --executor local`');
      for (const c of hotClusters) console.log(describeCluster(c));
    });

  cluster
    .command('end <name>')
    .description('let a hot cluster go; tasks running on it finish')
    .action(async (name: string, _opts: unknown, command: Command) => {
      const { endHotCluster } = await connect(command).request<{ endHotCluster: ClusterView }>(
        `mutation ($name: String!) { endHotCluster(name: $name) { ${CLUSTER_FIELDS} } }`,
        { name },
      );
      console.log(`ended hot cluster ${endHotCluster.name}`);
    });

  return cluster;
}

interface PoolView {
  name: string;
  health: string;
  capacity: number;
  running: number;
  queued: number;
  gpus: number;
  lastSeenAt: string | null;
  hosts: { name: string; executors: string[]; running: number; capacity: number; gpus: number; version: string; hotClusters: string[] }[];
}

/** `atelier executor list`: pools with their live hosts, and the pools tasks wait on with no live host. */
export async function listExecutors(client: Client): Promise<void> {
  const { executorPools } = await client.request<{ executorPools: PoolView[] }>(
    `{ executorPools { name health capacity running queued gpus lastSeenAt hosts { name executors running capacity gpus version hotClusters } } }`,
  );
  if (!executorPools.length) console.log('no executor hosts seen: start one with `npx atelier executor --pools local`');
  for (const p of executorPools) {
    const seen = p.health === 'HEALTHY' ? '' : p.lastSeenAt ? `, last host seen ${p.lastSeenAt}` : ', no host ever seen';
    console.log(`pool ${p.name}  ${p.health}  ${p.running}/${p.capacity} running, ${p.queued} waiting${p.gpus ? `, ${p.gpus} GPUs per host` : ''}${seen}`);
    for (const h of p.hosts) {
      const warm = h.hotClusters.length ? `  warm: ${h.hotClusters.join(', ')}` : '';
      console.log(`  ${h.name}  ${h.running}/${h.capacity}  ${h.executors.join(', ')}${h.gpus ? `  ${h.gpus} GPUs` : ''}  v${h.version}${warm}`);
    }
  }
}
