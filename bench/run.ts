// `npm run bench`: starts a real PostgreSQL and nats-server on free loopback ports, runs every benchmark,
// prints one table (each figure beside its floor from the same run) and writes bench/results/latest.json.
import os from 'node:os';
import { startNats } from '../test/harness/nats';
import { startPostgres } from '../test/harness/postgres';
import { cacheBench } from './cache';
import { cliBench } from './cli';
import { deployersBench } from './deployers';
import { deploymentsRolloutBench } from './deployments-rollout';
import { embeddedBench } from './embedded';
import { executorsBench } from './executors';
import { executorsFanoutBench } from './executors-fanout';
import { foundationBench } from './foundation';
import { governanceBench } from './governance';
import { printTable, type Row, writeResults } from './lib';
import { liveFanoutBench } from './live-fanout';
import { logFloodBench } from './log-flood';
import { modulesBench } from './modules';
import { monitoringBench } from './monitoring';
import { orchestrationBench } from './orchestration';
import { peersBench } from './peers';
import { registryBench } from './registry';
import { subscribersBench } from './subscribers';
import { trackingMetricsBench } from './tracking-metrics';
import { trackingSearchBench } from './tracking-search';
import { triggersBench } from './triggers';
import { webhooksBench } from './webhooks';
import { wireBench } from './wire';

const benches = [
  'foundation',
  'orchestration',
  'wire',
  'modules',
  'cache',
  'executors',
  'governance',
  'tracking',
  'registry',
  'webhooks',
  'triggers',
  'monitoring',
  'deployers',
  'deployments',
  'peers',
  'embedded',
  'subscribers',
  'live-fanout',
  'cli',
  'logs',
] as const;

/** `npm run bench` runs them all; `npm run bench -- governance cache` only those named. */
async function main() {
  const named = process.argv.slice(2);
  const unknown = named.filter((n) => !(benches as readonly string[]).includes(n));
  if (unknown.length) throw new Error(`No bench ${unknown.join(', ')}; pick from ${benches.join(', ')}.`);
  const selected = (name: (typeof benches)[number]) => !named.length || named.includes(name);
  const [pg, nats] = await Promise.all([startPostgres(), startNats()]);
  const rows: Row[] = [];
  try {
    const infra = { pgUrl: pg.url, natsUrl: nats.url };
    let foundationFloor: number | undefined;
    if (selected('foundation')) {
      console.log('foundation: 2,000 no-op tasks and 200 startRun → progress round trips…');
      const foundation = await foundationBench(infra);
      foundationFloor = foundation[0]?.floor;
      rows.push(...foundation);
    }
    if (selected('orchestration')) {
      console.log('orchestration: planning 1k/5k/10k nodes and a 10,000-node fan-out/fan-in run…');
      rows.push(...(await orchestrationBench(infra, foundationFloor)));
    }
    if (selected('wire')) {
      console.log('wire: SQL statements per task and per chain edge, and a chain edge (child start − parent finish)…');
      rows.push(...(await wireBench({ ...infra, pgLogFile: pg.logFile })));
    }
    if (selected('modules')) {
      console.log('modules: pushing a 1 MB, 200-file module from the CLI, new and unchanged…');
      rows.push(...(await modulesBench()));
    }
    if (selected('cache')) {
      console.log('cache: a 1,000-task workflow run twice with the same inputs…');
      rows.push(...(await cacheBench(infra)));
    }
    if (selected('executors')) {
      console.log('executors: one task cold vs on a local hot cluster, 20 runs each…');
      rows.push(...(await executorsBench()));
    }
    if (selected('governance')) {
      console.log(
        'governance: a 500-rule column ability, a 100-row preview with and without authorization, and the run page query with and without scope-auth…',
      );
      rows.push(...(await governanceBench()));
    }
    if (selected('tracking')) {
      console.log('tracking: a task logging 100,000 points vs logging nothing, points stored per second, metricHistory of 1,000,000 points…');
      rows.push(...(await trackingMetricsBench()));
      console.log('tracking: searchRuns over 100,000 runs with a metric filter and order, compareRuns of 100 runs × 5 metrics…');
      rows.push(...(await trackingSearchBench(infra)));
    }
    if (selected('registry')) {
      console.log('registry: lineage of a model version whose run read 50 datasets through a 1,000-task DAG…');
      rows.push(...(await registryBench(infra)));
    }
    if (selected('webhooks')) {
      console.log('webhooks: 1,000 deliveries emitted and posted by the delivery worker vs the same POSTs sent straight…');
      rows.push(...(await webhooksBench(infra)));
    }
    if (selected('triggers')) {
      console.log('triggers: 100 signals committed → their triggered runs started, against plain startRun…');
      rows.push(...(await triggersBench(infra)));
    }
    if (selected('monitoring')) {
      console.log('monitoring: 1,000,000 observations with 3 dimensions in batches of 10,000, one evaluator pass over 1,000 monitors…');
      rows.push(...(await monitoringBench()));
    }
    if (selected('deployers')) {
      console.log('deployers: 1,000 predictions through the local deployer’s router vs straight to the model process, and 50 rollbacks…');
      rows.push(...(await deployersBench()));
    }
    if (selected('deployments')) {
      console.log('deployments: an alias moved → the deployment serving the new version, and failovers, through the control plane…');
      rows.push(...(await deploymentsRolloutBench()));
    }
    if (selected('peers')) {
      console.log(
        'peers: graphile-worker (default, tuned) vs Atelier, interleaved, on its own Postgres (with pg_stat_statements) and nats-server: 10,000 no-op tasks, a 200-task chain; then Atelier alone: first progress, 1,000 subscribers, embedded…',
      );
      rows.push(...(await peersBench()));
    }
    if (selected('embedded')) {
      console.log('embedded: 2,000 and 10,000 no-op tasks on the embedded default (PGlite, in-process bus, host in the control plane)…');
      rows.push(...(await embeddedBench()));
    }
    if (selected('cli')) {
      console.log('cli: `atelier --help` beside `node -e 0`, in turns…');
      rows.push(...(await cliBench()));
    }
    if (selected('subscribers')) {
      console.log('subscribers: 1,000 graphql-ws subscribers to one run’s events, the control plane as its own process…');
      rows.push(...(await subscribersBench(infra)));
    }
    if (selected('live-fanout')) {
      console.log('live-fanout: 200 graphql-ws subscribers of one token on deploymentsChanged, 40 changes…');
      rows.push(...(await liveFanoutBench(infra)));
      console.log('live-fanout: 200 graphql-ws subscribers of one token on executorsChanged, 40 changes…');
      rows.push(...(await executorsFanoutBench(infra)));
    }
    if (selected('logs')) {
      console.log(
        `logs: a module writing ${process.env.BENCH_LOG_FLOOD_MIB ?? 200} MiB of log lines (BENCH_LOG_FLOOD_MIB), its host capping and not, beside the same bytes to /dev/null…`,
      );
      rows.push(...(await logFloodBench(infra)));
    }
  } finally {
    await nats.stop();
    await pg.stop();
  }
  console.log('');
  printTable(rows);
  const file = await writeResults(rows, { cpus: os.cpus().length, node: process.version });
  console.log(`\nwrote ${file}`);
}

main().then(
  () => process.exit(0),
  (error) => {
    console.error(error);
    process.exit(1);
  },
);
