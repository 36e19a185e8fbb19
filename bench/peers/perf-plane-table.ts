// Reads throughput-profile.ts' PROFILE_PERF_PLANE (`perf record` of the control plane's process, every thread) as
// shares of its CPU by what the samples were in: V8's optimizing compiler, the garbage collector, builtins, JSON, our
// optimized JavaScript, V8's and node's other C++, the kernel. With the run's control plane µs a task (the line
// throughput-profile prints), each share as µs a task too. `npx tsx bench/peers/perf-plane-table.ts file [µs a task]`.
import { execFileSync } from 'node:child_process';

/** What a symbol's time is charged to, in the order the rules are tried. */
const KINDS: [string, (symbol: string, kernel: boolean) => boolean][] = [
  ['the kernel (socket writes, epoll, scheduling, page faults)', (_, kernel) => kernel],
  ["V8's optimizing compiler (TurboFan's threads)", (s) => /compiler::|Turbofan|Maglev|Compile/.test(s)],
  ['the garbage collector (scavenges, marking, sweeping)', (s) => /Scaveng|Marking|Sweep|MarkCompact|Evacuat|GC|Heap/.test(s)],
  ['JSON (stringify, parse)', (s) => /Json/.test(s)],
  ["optimized JavaScript (our code's and libraries')", (s) => s.startsWith('JS:')],
  ["V8's builtins (property access, calls, Map and Set, arrays)", (s) => s.startsWith('Builtins_')],
  ["V8's and node's other C++ (IC misses, strings, handles, buffers, malloc)", () => true],
];

export function perfPlaneTable(report: string, usPerTask?: number): string[] {
  const shares = new Map<string, number>(KINDS.map(([kind]) => [kind, 0]));
  for (const line of report.split('\n')) {
    const m = /^\s*([\d.]+)%\s+\[(.)\]\s+(.*)$/.exec(line);
    if (!m) continue;
    const kind = KINDS.find(([, matches]) => matches(m[3]!, m[2] === 'k'))![0];
    shares.set(kind, shares.get(kind)! + Number(m[1]));
  }
  return [...shares]
    .sort((a, b) => b[1] - a[1])
    .map(
      ([kind, share]) => `${share.toFixed(1).padStart(5)}%${usPerTask ? `  ~${((share / 100) * usPerTask).toFixed(0).padStart(3)} µs a task` : ''}  ${kind}`,
    );
}

if (process.argv[1]?.endsWith('perf-plane-table.ts')) {
  const [file, us] = process.argv.slice(2);
  if (!file) throw new Error('usage: perf-plane-table.ts file [µs a task]');
  const report = execFileSync('perf', ['report', '-i', file, '--no-children', '-g', 'none', '--sort', 'sym', '-q'], {
    encoding: 'utf8',
    maxBuffer: 256 * 1024 * 1024,
    stdio: ['ignore', 'pipe', 'ignore'],
  });
  for (const line of perfPlaneTable(report, us ? Number(us) : undefined)) console.log(line);
}
