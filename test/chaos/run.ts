// `npm run chaos`: the chaos suite's long form. Flags (or CHAOS_* environment variables) set the seed, the length
// of the chaos phase, the number of faults and the load; it prints the figures and exits 1 when a counter is not 0.
//   npm run chaos -- --seed 7 --duration 180 --faults 40
import { writeFile } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import { type ChaosOptions, defaultChaosOptions, evidenceText, runChaos } from './harness';

const { values } = parseArgs({
  options: {
    seed: { type: 'string', default: process.env.CHAOS_SEED },
    duration: { type: 'string', default: process.env.CHAOS_DURATION_S },
    faults: { type: 'string', default: process.env.CHAOS_FAULTS },
    'run-every': { type: 'string', default: process.env.CHAOS_RUN_EVERY_MS },
    'heartbeat-timeout': { type: 'string', default: process.env.CHAOS_HEARTBEAT_TIMEOUT_S },
    settle: { type: 'string', default: process.env.CHAOS_SETTLE_S },
    quiet: { type: 'string', default: process.env.CHAOS_QUIET_S },
    json: { type: 'string', default: process.env.CHAOS_JSON },
    help: { type: 'boolean', short: 'h' },
  },
});

if (values.help) {
  console.log(`npm run chaos -- [--seed N] [--duration SECONDS] [--faults N] [--run-every MS] [--heartbeat-timeout SECONDS]
                    [--settle SECONDS] [--quiet SECONDS] [--json FILE]
Each flag may also be set as CHAOS_SEED, CHAOS_DURATION_S, CHAOS_FAULTS, CHAOS_RUN_EVERY_MS,
CHAOS_HEARTBEAT_TIMEOUT_S, CHAOS_SETTLE_S, CHAOS_QUIET_S, CHAOS_JSON.
Defaults: seed ${defaultChaosOptions.seed}, ${defaultChaosOptions.durationMs / 1000} s, ${defaultChaosOptions.faults} faults.`);
  process.exit(0);
}

const num = (v: string | undefined, name: string): number | undefined => {
  if (v === undefined || v === '') return undefined;
  const n = Number(v);
  if (!Number.isFinite(n) || n < 0) {
    console.error(`--${name} must be a number (got "${v}")`);
    process.exit(2);
  }
  return n;
};
const seconds = (v: string | undefined, name: string) => {
  const n = num(v, name);
  return n === undefined ? undefined : n * 1000;
};

const options: Partial<ChaosOptions> = Object.fromEntries(
  Object.entries({
    seed: num(values.seed, 'seed') ?? Math.floor(Math.random() * 1e9),
    durationMs: seconds(values.duration, 'duration'),
    faults: num(values.faults, 'faults'),
    runEveryMs: num(values['run-every'], 'run-every'),
    heartbeatTimeoutSeconds: num(values['heartbeat-timeout'], 'heartbeat-timeout'),
    settleMs: seconds(values.settle, 'settle'),
    quietMs: seconds(values.quiet, 'quiet'),
  }).filter(([, v]) => v !== undefined),
);

const report = await runChaos(options);
console.log(`\n${report.table}\n`);
const evidence = evidenceText(report);
if (evidence) console.log(evidence);
if (values.json) await writeFile(values.json, JSON.stringify(report, null, 1));
const failed = Object.entries(report.counters).filter(([, n]) => n !== 0);
console.log(failed.length ? `FAILED: ${failed.map(([k, n]) => `${k} ${n}`).join(', ')}` : 'every counter is 0');
process.exit(failed.length ? 1 : 0);
