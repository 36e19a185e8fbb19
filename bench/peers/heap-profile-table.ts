// Reads a .heapprofile (throughput-profile.ts' PROFILE_HEAP: V8's sampling heap profiler with the objects either
// collector freed included) as KB allocated a task: by area (the innermost library or file of ours on the allocating
// stack, as cpu-profile-table.ts charges time), by function (self), and by the innermost function of ours on the stack
// (what our code caused, a library's allocations included). `npx tsx bench/peers/heap-profile-table.ts file [tasks] [functions]`.
import { readFile } from 'node:fs/promises';
import { areaOf, type CallFrame, where } from './cpu-profile-table';

interface HeapNode {
  callFrame: CallFrame;
  selfSize: number;
  children: HeapNode[];
}

const OURS = /\/(server|plugins|bench)\//;

export function heapProfileTable(head: HeapNode, tasks: number, functions = 40): string[] {
  const areas = new Map<string, number>();
  const selves = new Map<string, number>();
  const oursInnermost = new Map<string, number>();
  let total = 0;
  const add = (m: Map<string, number>, k: string, bytes: number) => m.set(k, (m.get(k) ?? 0) + bytes);
  const walk = (node: HeapNode, stack: CallFrame[]) => {
    const here = [node.callFrame, ...stack];
    if (node.selfSize > 0) {
      add(areas, areaOf(here), node.selfSize);
      // A builtin (`next`, `set`, `join`: no script) is shown with the function that called it.
      add(selves, node.callFrame.url || !stack[0] ? where(node.callFrame) : `${where(node.callFrame)}← ${where(stack[0])}`, node.selfSize);
      const ours = here.find((f) => OURS.test(f.url) && !f.url.includes('/node_modules/'));
      add(oursInnermost, ours ? `${where(ours)}:${ours.lineNumber + 1}` : '(no frame of ours)', node.selfSize);
      total += node.selfSize;
    }
    for (const child of node.children) walk(child, here);
  };
  walk(head, []);
  const line = ([k, bytes]: [string, number]) =>
    `${(bytes / tasks / 1000).toFixed(2).padStart(7)} KB a task ${((100 * bytes) / total).toFixed(1).padStart(5)}%  ${k}`;
  const sorted = (m: Map<string, number>) => [...m].sort((a, b) => b[1] - a[1]);
  return [
    `${(total / tasks / 1000).toFixed(2)} KB a task allocated (sampled), ${(total / 1e6).toFixed(1)} MB in all`,
    '-- by area (the innermost library or file of ours on the stack)',
    ...sorted(areas)
      .filter(([, bytes]) => bytes / tasks >= 10)
      .map(line),
    `-- by the innermost function of ours on the stack, the ${functions} largest`,
    ...sorted(oursInnermost).slice(0, functions).map(line),
    `-- self, the ${functions} largest`,
    ...sorted(selves).slice(0, functions).map(line),
  ];
}

if (process.argv[1]?.endsWith('heap-profile-table.ts')) {
  const [file, tasks = '10000', functions = '40'] = process.argv.slice(2);
  if (!file) throw new Error('usage: heap-profile-table.ts file.heapprofile [tasks] [functions]');
  const profile = JSON.parse(await readFile(file, 'utf8')) as { head: HeapNode };
  for (const l of heapProfileTable(profile.head, Number(tasks), Number(functions))) console.log(l);
}
