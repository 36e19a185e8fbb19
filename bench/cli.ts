// The CLI's start: every `atelier` command is a process of its own, so what it loads before its first line runs is
// paid by each one (scripts, CI jobs, the test suite's several hundred). Measured as the CPU (user + system) and wall
// time of `atelier --help` from the warm bundle (server/cli/bin.js), beside a bare `node -e 0` in turns as its floor.
import { spawn } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { percentile, type Row } from './lib';

const root = path.join(path.dirname(fileURLToPath(import.meta.url)), '..');
const RUNS = 15;

/** Wall and CPU (ms) of one process: its CPU as it reports it on exit (bench/cli-usage.cjs, preloaded). */
function timed(args: string[]): Promise<{ wall: number; cpu: number }> {
  return new Promise((resolve, reject) => {
    const began = performance.now();
    const child = spawn(process.execPath, ['-r', path.join(root, 'bench', 'cli-usage.cjs'), ...args], {
      cwd: root,
      stdio: ['ignore', 'ignore', 'pipe'],
      env: { PATH: process.env.PATH, HOME: process.env.HOME },
    });
    let stderr = '';
    child.stderr.on('data', (c: Buffer) => (stderr += c));
    child.on('error', reject);
    child.on('close', (code) => {
      const wall = performance.now() - began;
      const cpu = /@@cpu ([\d.]+)/.exec(stderr);
      if (code !== 0 || !cpu) return reject(new Error(`${args.join(' ')} exited ${code}: ${stderr.slice(-500)}`));
      resolve({ wall, cpu: Number(cpu[1]) });
    });
  });
}

export async function cliBench(): Promise<Row[]> {
  const help = [path.join(root, 'server', 'cli', 'bin.js'), '--help'];
  const bare = ['-e', '0'];
  await timed(help); // builds the bundle if it is stale
  const cli: { wall: number; cpu: number }[] = [];
  const floor: { wall: number; cpu: number }[] = [];
  for (let i = 0; i < RUNS; i++) {
    cli.push(await timed(help));
    floor.push(await timed(bare));
  }
  const p50 = (xs: { wall: number; cpu: number }[], k: 'wall' | 'cpu') =>
    percentile(
      xs.map((x) => x[k]),
      50,
    );
  const row = (metric: string, k: 'wall' | 'cpu'): Row => ({
    bench: 'cli',
    metric,
    value: Math.round(p50(cli, k)),
    unit: 'ms',
    floor: Math.round(p50(floor, k)),
    ratio: Math.round((p50(cli, k) / p50(floor, k)) * 100) / 100,
    note: `p50 of ${RUNS}, in turns with node -e 0`,
  });
  return [row('atelier --help, wall', 'wall'), row('atelier --help, CPU (user + system)', 'cpu')];
}
