// Reads a .cpuprofile (throughput-profile.ts' PROFILE_CPU, or `node --cpu-prof`) as µs a task: the time of each area
// (the innermost frame of a library or of ours on the sample's stack: the driver's time is the driver's even when our
// code called it) and each function's self time. `npx tsx bench/peers/cpu-profile-table.ts file [tasks] [functions]`.
import { readFile } from 'node:fs/promises';

export interface CallFrame {
  functionName: string;
  url: string;
  lineNumber: number;
}
interface ProfileNode {
  id: number;
  callFrame: CallFrame;
  children?: number[];
}
interface CpuProfile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

const LIBRARIES: [string, string][] = [
  ['/node_modules/postgres/', 'postgres driver'],
  ['/node_modules/drizzle-orm/', 'drizzle'],
  ['/node_modules/@nats-io/', 'NATS client'],
  ['/node_modules/prom-client/', 'prom-client'],
  ['/node_modules/graphile-worker/', 'graphile-worker'],
];
const V8_ROWS = new Set(['(garbage collector)', '(idle)', '(program)']);

/** The area a sample's stack (innermost first) is charged to. */
export function areaOf(stack: CallFrame[]): string {
  const leaf = stack[0]!;
  if (V8_ROWS.has(leaf.functionName)) return leaf.functionName;
  for (const frame of stack) {
    const library = LIBRARIES.find(([part]) => frame.url.includes(part));
    if (library) return library[1];
    const ours = /\/(server|plugins|bench)\/(.*)$/.exec(frame.url);
    if (ours && !frame.url.includes('/node_modules/')) return ours.slice(1).join('/');
  }
  return `node: ${leaf.url.split('/').pop() || leaf.functionName}`;
}

export const where = (f: CallFrame) => `${f.functionName || '(anonymous)'} ${f.url.replace(/^.*\/(node_modules|server|plugins|bench)\//, '$1/')}`;

export function cpuProfileTable(profile: CpuProfile, tasks: number, functions = 40): string[] {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  // A sample's time is the delta to the next one.
  const time = new Map<number, number>();
  for (const [i, id] of profile.samples.entries()) time.set(id, (time.get(id) ?? 0) + (profile.timeDeltas[i + 1] ?? 0));
  const areas = new Map<string, number>();
  const selves = new Map<string, number>();
  let total = 0;
  for (const [id, us] of time) {
    const stack: CallFrame[] = [];
    for (let n: number | undefined = id; n !== undefined; n = parent.get(n)) stack.push(byId.get(n)!.callFrame);
    const add = (m: Map<string, number>, k: string) => m.set(k, (m.get(k) ?? 0) + us);
    add(areas, areaOf(stack));
    add(selves, where(stack[0]!));
    total += us;
  }
  const idle = areas.get('(idle)') ?? 0;
  const line = ([k, us]: [string, number]) => `${(us / tasks).toFixed(1).padStart(7)} µs a task ${((100 * us) / (total - idle)).toFixed(1).padStart(5)}%  ${k}`;
  const sorted = (m: Map<string, number>) => [...m].filter(([k]) => k !== '(idle)').sort((a, b) => b[1] - a[1]);
  return [
    `${((total - idle) / tasks).toFixed(1)} µs a task on the main thread (${(idle / tasks).toFixed(1)} idle), ${(total / 1000).toFixed(0)} ms sampled`,
    '-- by area (the innermost library or file of ours on the stack)',
    ...sorted(areas).map(line),
    `-- self time, the ${functions} largest`,
    ...sorted(selves).slice(0, functions).map(line),
  ];
}

if (process.argv[1]?.endsWith('cpu-profile-table.ts')) {
  const [file, tasks = '10000', functions = '40'] = process.argv.slice(2);
  if (!file) throw new Error('usage: cpu-profile-table.ts file.cpuprofile [tasks] [functions]');
  const profile = JSON.parse(await readFile(file, 'utf8')) as CpuProfile;
  for (const l of cpuProfileTable(profile, Number(tasks), Number(functions))) console.log(l);
}
