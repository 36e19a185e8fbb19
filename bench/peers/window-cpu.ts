// What the control plane's main thread did inside given windows of the hop tracer's clock (plugins/trace.ts): V8's
// CPU profiler on this process, each sample put on the tracer's clock and charged to the innermost library or file of
// ours on its stack (cpu-profile-table.ts' areas), summed over the windows. For latency probes (wire-trace.ts).
import { Session } from 'node:inspector';
import { traceNow } from '../../plugins/trace';
import { areaOf, type CallFrame, type CpuProfile, where } from './cpu-profile-table';

export interface WindowCpu {
  /** Stops the profiler; `charge` then sums each named window's samples by area and by function. */
  stop(): Promise<{ charge(name: string, from: number, to: number): void; print(windows: number): void }>;
}

/** Starts V8's profiler, sampling every `intervalUs`. */
export async function profileWindows(intervalUs = 50): Promise<WindowCpu> {
  const session = new Session();
  session.connect();
  const post = (method: string, params?: object) =>
    new Promise<unknown>((resolve, reject) => session.post(method, params, (err, result) => (err ? reject(err) : resolve(result))));
  await post('Profiler.enable');
  await post('Profiler.setSamplingInterval', { interval: intervalUs });
  await post('Profiler.start');
  // V8's sample times and performance.now() both read the monotonic clock (µs, ms): the tracer's clock is this far off.
  const offset = traceNow() - Number(process.hrtime.bigint()) / 1e6;
  return {
    async stop() {
      const { profile } = (await post('Profiler.stop')) as { profile: CpuProfile & { startTime: number } };
      session.disconnect();
      const byId = new Map(profile.nodes.map((n) => [n.id, n]));
      const parent = new Map<number, number>();
      for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
      const stackOf = (id: number) => {
        const stack: CallFrame[] = [];
        for (let n: number | undefined = id; n !== undefined; n = parent.get(n)) stack.push(byId.get(n)!.callFrame);
        return stack;
      };
      // Each sample: its time on the tracer's clock and how long it stands for (the delta to the next one), in ms.
      const at: number[] = [];
      let t = profile.startTime;
      for (const d of profile.timeDeltas) at.push((t += d) / 1000 + offset);
      const sums = new Map<string, { total: number; areas: Map<string, number>; functions: Map<string, number> }>();
      return {
        charge(name, from, to) {
          let s = sums.get(name);
          if (!s) sums.set(name, (s = { total: 0, areas: new Map(), functions: new Map() }));
          // The samples are in time order: a binary search for the first at or after `from`.
          let lo = 0;
          for (let hi = at.length; lo < hi; ) {
            const mid = (lo + hi) >> 1;
            if (at[mid]! < from) lo = mid + 1;
            else hi = mid;
          }
          for (let i = lo; i < at.length && at[i]! <= to; i++) {
            const ms = ((profile.timeDeltas[i + 1] ?? 0) as number) / 1000;
            const stack = stackOf(profile.samples[i]!);
            s.total += ms;
            s.areas.set(areaOf(stack), (s.areas.get(areaOf(stack)) ?? 0) + ms);
            s.functions.set(where(stack[0]!), (s.functions.get(where(stack[0]!)) ?? 0) + ms);
          }
        },
        print(windows) {
          for (const [name, s] of sums) {
            console.log(`\n${name}: ${(s.total / windows).toFixed(3)} ms of samples a window (${((s.areas.get('(idle)') ?? 0) / windows).toFixed(3)} idle)`);
            const top = (m: Map<string, number>, n: number) => [...m].sort((a, b) => b[1] - a[1]).slice(0, n);
            for (const [area, ms] of top(s.areas, 10)) console.log(`${(ms / windows).toFixed(3).padStart(8)}  ${area}`);
            console.log('  -- self time');
            for (const [f, ms] of top(s.functions, 12)) console.log(`${(ms / windows).toFixed(3).padStart(8)}  ${f}`);
          }
        },
      };
    },
  };
}
