// An opt-in hop tracer for latency profiles (bench/peers/s3-profile.ts): code on a run's path stamps named hops
// with the run's id and a wall-clock time in fractional milliseconds, comparable across the processes of one
// machine. Off unless ATELIER_TRACE_DIR is set (or startTracing is called): a stamp is then one check of a variable.
// On, stamps are kept in memory and appended to <dir>/<pid>.jsonl every 100 ms and at exit.
import { appendFileSync } from 'node:fs';
import path from 'node:path';

let file: string | undefined;
let lines: string[] = [];
let timer: NodeJS.Timeout | undefined;

/** Now, as epoch milliseconds with a fraction (every process of the machine reads the same clock). */
export const traceNow = (): number => performance.timeOrigin + performance.now();

/** Whether stamps are kept (for stamps that cost something to make, such as finding a run's id in a frame). */
export const tracing = (): boolean => file !== undefined;

/** Stamps `hop` of the run `key` at `at` (default now), lasting `ms` if given. Does nothing unless tracing. */
export function traceHop(hop: string, key: string, at?: number, ms?: number): void {
  if (file === undefined) return;
  lines.push(JSON.stringify(ms === undefined ? { hop, key, at: at ?? traceNow() } : { hop, key, at: at ?? traceNow(), ms }));
  timer ??= setTimeout(flushTrace, 100);
  timer.unref();
}

/**
 * Stamps `hop` of the run `key` as traceHop does, naming the task too: a chain's edges (bench/peers/edge-trace.ts) are
 * told apart by task, all of one run. Does nothing unless tracing.
 */
export function traceTaskHop(hop: string, key: string, task: string): void {
  if (file === undefined) return;
  lines.push(JSON.stringify({ hop, key, task, at: traceNow() }));
  timer ??= setTimeout(flushTrace, 100);
  timer.unref();
}

/** Writes what is buffered to the trace file now. */
export function flushTrace(): void {
  clearTimeout(timer);
  timer = undefined;
  if (file === undefined || !lines.length) return;
  const text = `${lines.join('\n')}\n`;
  lines = [];
  appendFileSync(file, text);
}

/** Starts tracing this process into `dir` (what ATELIER_TRACE_DIR does at start). */
export function startTracing(dir: string): void {
  if (file === undefined) process.once('exit', flushTrace);
  file = path.join(dir, `${process.pid}.jsonl`);
}

/** Stops tracing this process, writing what is buffered first. */
export function stopTracing(): void {
  flushTrace();
  file = undefined;
}

if (process.env.ATELIER_TRACE_DIR) startTracing(process.env.ATELIER_TRACE_DIR);
