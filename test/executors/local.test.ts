// The `local` executor run for real through the executor host on the memory bus: child processes, fd-3 progress,
// exit codes, cancel and grace, timeouts, and the process group gone afterwards.
import { pbkdf2 } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createLocalExecutor, type LocalExecutorOptions } from '../../executors/local/index';
import type { ExecutorHost } from '../../plugins/host';
import type { ExecutorEvent } from '../../plugins/protocol';
import type { TaskContext, TaskMessage } from '../../plugins/sdk';
import { buildModule, createHostWorld, createScratch, type HostOverrides, type HostWorld, makeTask, processAlive, waitFor } from '../plugins/host-harness';

const helperJs = readFileSync(path.join(import.meta.dirname, '../../executors/local/progress.js'), 'utf8');
const helperPy = readFileSync(path.join(import.meta.dirname, '../../executors/local/atelier_progress.py'), 'utf8');

let scratch: ReturnType<typeof createScratch>;
let world: HostWorld;
let lastHost: ExecutorHost;

beforeEach(async () => {
  scratch = createScratch();
  world = await createHostWorld(path.join(scratch.root, 'work'));
});
afterEach(async () => {
  await world.close();
  scratch.remove();
});

/** Builds a module, starts a host with the local executor, and enqueues one task running it. */
async function run(
  files: Record<string, string>,
  module: Partial<TaskMessage['module']>,
  task: Partial<TaskMessage> = {},
  hostOptions: HostOverrides = {},
  executorOptions: LocalExecutorOptions = {},
) {
  const { archive, digest } = await buildModule(scratch.root, `m${Math.random().toString(36).slice(2)}`, files);
  world.artifacts.add(digest, archive);
  lastHost = await world.startHost([createLocalExecutor({ graceMs: 300, ...executorOptions })], hostOptions);
  return world.submit(makeTask({ ...task, module: { digest, ...module } }));
}

/** The pid of the `sleep` a module printed as `grandchild <pid> <seconds>` on stdout, as this process sees it. */
async function grandchildPid(taskId: string) {
  const line = await waitFor(() => world.logLines(taskId, 'stdout').find((l) => l.startsWith('grandchild ')), 'the grandchild pid');
  const [, pid, seconds] = line.split(' ');
  // The shell prints `$!` as soon as it has forked: the child may not have exec'd its `sleep` yet (on a loaded machine
  // it had not, and the sandbox's inner pid was taken for one of ours).
  return waitFor(() => hostPidOf(Number(pid), seconds!), `the grandchild sleep ${seconds}`);
}

let sleeps = 0;
/** A `sleep` no other test's sandbox runs (pid namespaces number from 1, so inner pids repeat across sandboxes). */
const uniqueSleep = () => `30.${process.pid}${++sleeps}`;
/** A script that starts a grandchild `sleep` in the background and prints its pid and its argument. */
const grandchildScript = (prefix = '', rest = 'wait\n') => {
  const seconds = uniqueSleep();
  return `${prefix}sleep ${seconds} &\necho "grandchild $! ${seconds}"\n${rest}`;
};

/**
 * A sandboxed module lives in its own pid namespace: the pid it prints is the namespace's. Its pid here is the `sleep`
 * whose NSpid line ends with that pid (one namespace below ours, or ours unsandboxed) and whose argument is the one
 * it was given; undefined while there is no such `sleep`.
 */
function hostPidOf(inner: number, seconds: string): number | undefined {
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    let status: string;
    try {
      status = readFileSync(`/proc/${entry}/status`, 'utf8');
    } catch {
      continue;
    }
    const ns = /^NSpid:\s+(.*)$/m.exec(status)?.[1]?.split(/\s+/).map(Number) ?? [];
    if (ns.length > 2 || ns.at(-1) !== inner || !/^Name:\s+sleep$/m.test(status)) continue;
    let cmdline = '';
    try {
      cmdline = readFileSync(`/proc/${entry}/cmdline`, 'utf8');
    } catch {}
    if (cmdline === `sleep\u0000${seconds}\u0000`) return Number(entry);
  }
  return undefined;
}

describe('local executor', () => {
  it('streams logs, progress, metrics and outputs, then succeeds', async () => {
    const task = await run(
      {
        'main.mjs': `
          import { progress, metric, output } from './progress.js';
          const params = JSON.parse(process.env.ATELIER_PARAMS);
          console.log('hello from ' + process.env.ATELIER_NODE + ' attempt ' + process.env.ATELIER_ATTEMPT);
          console.error('a warning');
          progress(0.5, 'half way');
          metric({ loss: 0.25, acc: 0.9 }, 3);
          output('model', { uri: 'file:///model', lr: params.lr });
          console.log('inputs ' + process.env.ATELIER_INPUTS);
          console.log('secret ' + (process.env.SECRET_TOKEN ?? 'absent'));
        `,
        'progress.js': helperJs,
      },
      { entrypoint: 'main.mjs', runtime: 'node' },
      { parameters: { lr: 0.01 }, inputs: { prep: { rows: 3 } } },
    );
    process.env.SECRET_TOKEN = 'leak'; // set after the host started: the child must still not see it
    try {
      const result = await world.result(task.taskId);
      expect(result.outcome).toMatchObject({ state: 'SUCCEEDED', exitCode: 0, outputs: { model: { uri: 'file:///model', lr: 0.01 } } });
      expect(result.durationMs).toBeGreaterThan(0);
    } finally {
      delete process.env.SECRET_TOKEN;
    }
    const events = world.eventsOf(task.taskId);
    expect(world.logLines(task.taskId, 'stdout')).toEqual([`hello from ${task.node} attempt 1`, 'inputs {"prep":{"rows":3}}', 'secret absent']);
    expect(world.logLines(task.taskId, 'stderr')).toEqual(['a warning']);
    expect(events.find((e) => e.kind === 'progress')).toMatchObject({ fraction: 0.5, message: 'half way' });
    expect(events.find((e) => e.kind === 'metric')).toMatchObject({
      points: [expect.objectContaining({ name: 'loss', value: 0.25, step: 3 }), expect.objectContaining({ name: 'acc', value: 0.9, step: 3 })],
    });
    const started = events.find((e) => e.kind === 'started');
    expect(started).toMatchObject({ host: 'test-host', handle: { pid: expect.any(Number), pgid: expect.any(Number), startTime: expect.any(Number) } });
    // seq runs 0, 1, 2… per attempt, and the result is the last event
    expect(events.map((e) => e.seq).sort((a, b) => a - b)).toEqual(events.map((_, i) => i));
    expect(events.at(-1)?.kind).toBe('result');
    expect(world.timeline.indexOf(`event:result:${task.taskId}`)).toBeLessThan(world.timeline.indexOf(`ack:${task.taskId}`));
  });

  it('runs python3 modules with the python helper, which batches metric points and keeps NaN and ±Infinity', async () => {
    const task = await run(
      {
        'main.py': `
import base64, json, os, time
import atelier_progress as ap
params = json.loads(os.environ["ATELIER_PARAMS"])
sends = []
_send = ap._send
# This host reads series in frames: a series' points are its count (its numbers follow the line as bytes), its
# values' float64s where packed in the line, or its plain values.
count = lambda s: s["count"] if "count" in s else len(base64.b64decode(s["valuesF64"])) // 8 if "valuesF64" in s else len(s["values"])
ap._send = lambda message, raw=b"": (sends.append(sum(count(s) for s in message.get("series", []))), _send(message, raw))
class Scalar:  # a numpy or torch scalar: a number through __float__
    def __float__(self): return 0.125
ap.progress(1.0, "done")
began = time.monotonic()
ap.metric({"loss": 0.5}, step=1)
for step in range(2, 2502):
    ap.metric({"loss": 1.0 / step}, step=step)
ap.metric({"loss": float("nan"), "acc": Scalar(), "gap": float("inf")}, step=2502)
ap.output("answer", params["x"] * 2)
print("out dir", os.path.isdir(os.environ["ATELIER_OUTPUT_DIR"]))
print("batches", [n for n in sends if n])
print("reported in ms", round((time.monotonic() - began) * 1000))
`,
        'atelier_progress.py': helperPy,
      },
      { entrypoint: 'main.py', runtime: 'python3' },
      { parameters: { x: 21 } },
    );
    const result = await world.result(task.taskId);
    expect(result.outcome).toMatchObject({ state: 'SUCCEEDED', outputs: { answer: 42 } });
    // 2,504 points in a few sends (1,000 at most each, or what 0.2 s gathered), not one per point: at most three full
    // sends, one per 0.2 s the module spent reporting (a loaded machine stretches it), and the last one.
    const [dir, batches, took] = world.logLines(task.taskId, 'stdout');
    expect(dir).toBe('out dir True');
    const sizes = JSON.parse(batches!.replace('batches ', '')) as number[];
    expect(sizes.reduce((a, b) => a + b, 0)).toBe(2504);
    const reportedMs = Number(took!.replace('reported in ms ', ''));
    expect(sizes.length).toBeLessThanOrEqual(3 + Math.floor(reportedMs / 200) + 1);
    const points = world
      .eventsOf(task.taskId)
      .filter((e) => e.kind === 'metric')
      .flatMap((e) => (e as unknown as { points: { name: string; value: unknown; step: number }[] }).points);
    expect(points).toHaveLength(2504);
    expect(points[0]).toMatchObject({ name: 'loss', value: 0.5, step: 1 });
    expect(points.filter((p) => p.name === 'loss').map((p) => p.step)).toEqual(Array.from({ length: 2502 }, (_, i) => i + 1));
    expect(points.slice(-3)).toEqual([
      expect.objectContaining({ name: 'loss', value: 'NaN', step: 2502 }),
      expect.objectContaining({ name: 'acc', value: 0.125, step: 2502 }),
      expect.objectContaining({ name: 'gap', value: 'Infinity', step: 2502 }),
    ]);
  });

  it('names the process by its start time even when it exits before the threadpool is free to read /proc', async () => {
    // The threadpool kept busy (as unpacking and progress files keep it on a loaded host) from the task's submission
    // to its start: a start time read through it came after Node had reaped the exited module, and the handle had none
    // (seen under load in the test above).
    const { archive, digest } = await buildModule(scratch.root, 'exits-at-once', { 'main.sh': 'exit 0\n' });
    world.artifacts.add(digest, archive);
    await world.startHost([createLocalExecutor({ graceMs: 300 })]);
    let hogging = true;
    const hog = async () => {
      while (hogging) await new Promise((resolve) => pbkdf2('p', 's', 10_000, 64, 'sha512', resolve));
    };
    const hogs = Array.from({ length: 6 }, hog); // more than its four threads: every file operation waits its turn
    let started: ExecutorEvent | undefined;
    try {
      const task = await world.submit(makeTask({ module: { digest, entrypoint: 'main.sh', runtime: 'shell' } }));
      started = await waitFor(() => world.eventsOf(task.taskId).find((e) => e.kind === 'started'), 'the started event');
    } finally {
      hogging = false;
      await Promise.all(hogs);
    }
    expect(started).toMatchObject({ handle: { pid: expect.any(Number), startTime: expect.any(Number) } });
    expect((await world.result(started.taskId)).outcome.state).toBe('SUCCEEDED');
  });

  it('fails on a non-zero exit with the tail of stderr', async () => {
    const lines = Array.from({ length: 30 }, (_, i) => `echo "err line ${i}" >&2`).join('\n');
    const task = await run({ 'main.sh': `${lines}\nexit 3\n` }, { entrypoint: 'main.sh', runtime: 'shell' });
    const { outcome } = await world.result(task.taskId);
    expect(outcome).toMatchObject({ state: 'FAILED', reason: 'exit-code', exitCode: 3 });
    expect(outcome.retryable).toBeUndefined(); // an ordinary failure: the task's retry policy decides
    expect(outcome.message).toContain('exited with code 3');
    expect(outcome.message).toContain('err line 29');
    expect(outcome.message).toContain('err line 10');
    expect(outcome.message).not.toContain('err line 9\n');
    expect(world.logLines(task.taskId, 'stderr')).toHaveLength(30);
  });

  it('fails permanently, naming the entrypoint, when it cannot be started', async () => {
    const task = await run({ 'other.sh': 'exit 0\n' }, { entrypoint: 'missing.sh', runtime: 'shell' });
    const { outcome } = await world.result(task.taskId);
    expect(outcome).toMatchObject({ state: 'FAILED', reason: 'launch-failed', retryable: false });
    expect(outcome.message).toContain('"missing.sh"');
  });

  it('cancels mid-run: SIGTERM stops the whole process group', async () => {
    // A grace period no loaded machine outlasts: with the file's 300 ms, a group that a loaded machine has not yet
    // let end (the shell, the sleep, the sandbox's init) is killed with SIGKILL, and the outcome then says so.
    const task = await run({ 'main.sh': grandchildScript() }, { entrypoint: 'main.sh', runtime: 'shell' }, {}, {}, { graceMs: 20_000 });
    const pid = await grandchildPid(task.taskId);
    expect(processAlive(pid)).toBe(true);
    await world.bus.publishCancel({ taskId: task.taskId, attempt: 1, reason: 'user asked' });
    const { outcome } = await world.result(task.taskId);
    expect(outcome).toMatchObject({ state: 'CANCELLED', reason: 'cancelled' });
    expect(outcome.message).toContain('user asked');
    expect(outcome.message).toContain('SIGTERM');
    expect(processAlive(pid)).toBe(false);
  });

  it('reports a stop only once its whole group is gone: a member ignoring SIGTERM outlives the leader until the SIGKILL', async () => {
    // The leader dies of the SIGTERM at once; the background sleep ignores it (inherited) and writes to no pipe of
    // ours, so nothing but the group itself says it still runs. Unsandboxed: in a sandbox the pid namespace ends with
    // its leader, and the kernel kills the rest.
    const seconds = uniqueSleep();
    const script = `trap '' TERM\nsleep ${seconds} >/dev/null 2>&1 &\ntrap - TERM\necho "grandchild $! ${seconds}"\nwait\n`;
    const task = await run({ 'main.sh': script }, { entrypoint: 'main.sh', runtime: 'shell' }, {}, {}, { isolation: 'none' });
    const pid = await grandchildPid(task.taskId);
    await world.bus.publishCancel({ taskId: task.taskId, attempt: 1, reason: 'user asked' });
    const { outcome } = await world.result(task.taskId);
    expect(processAlive(pid)).toBe(false);
    expect(outcome).toMatchObject({ state: 'CANCELLED', reason: 'cancelled' });
    expect(outcome.message).toContain('SIGKILL after a 300 ms grace period');
  });

  it('kills a module that ignores SIGTERM after the grace period', async () => {
    const task = await run({ 'main.sh': grandchildScript("trap '' TERM\n", 'while true; do wait; done\n') }, { entrypoint: 'main.sh', runtime: 'shell' });
    const pid = await grandchildPid(task.taskId);
    const cancelledAt = Date.now();
    await world.bus.publishCancel({ taskId: task.taskId, attempt: 1, reason: 'user asked' });
    const { outcome } = await world.result(task.taskId);
    expect(Date.now() - cancelledAt).toBeGreaterThanOrEqual(300);
    expect(outcome).toMatchObject({ state: 'CANCELLED', reason: 'cancelled' });
    expect(outcome.message).toContain('SIGKILL after a 300 ms grace period');
    expect(processAlive(pid)).toBe(false);
  });

  it('times out with a clear message', async () => {
    // The limit leaves the module time to start its grandchild on a loaded machine (400 ms did not, under CI's load 16).
    const task = await run({ 'main.sh': grandchildScript() }, { entrypoint: 'main.sh', runtime: 'shell' }, { timeoutMs: 2_000 });
    const pid = await grandchildPid(task.taskId);
    const { outcome } = await world.result(task.taskId);
    expect(outcome).toMatchObject({ state: 'TIMED_OUT', reason: 'timeout' });
    expect(outcome.message).toContain('exceeded its time limit of 2 s (timeoutMs 2000)');
    expect(processAlive(pid)).toBe(false);
  });

  it('reports an unexpected SIGKILL as a retryable failure suspecting memory', async () => {
    const task = await run({ 'main.sh': 'echo dying >&2\nkill -KILL $$\n' }, { entrypoint: 'main.sh', runtime: 'shell' });
    const { outcome } = await world.result(task.taskId);
    expect(outcome).toMatchObject({ state: 'FAILED', reason: 'killed', retryable: true });
    expect(outcome.message).toMatch(/out of memory/);
  });

  it('warns about malformed progress lines and carries on', async () => {
    const task = await run(
      {
        'main.sh': [
          "echo 'not json' >&3",
          "echo '[1,2]' >&3",
          'echo \'{"progress":0.25,"message":"quarter"}\' >&3',
          'echo \'{"outputs":{"a":1,"b":[2]}}\' >&3',
          'echo \'{"log":"via fd3"}\' >&3',
          'echo \'{"what":1}\' >&3',
          'exit 0',
        ].join('\n'),
      },
      { entrypoint: 'main.sh', runtime: 'shell' },
    );
    const { outcome } = await world.result(task.taskId);
    expect(outcome).toMatchObject({ state: 'SUCCEEDED', outputs: { a: 1, b: [2] } });
    const warnings = world.logLines(task.taskId, 'stderr');
    expect(warnings.filter((l) => l.startsWith('[atelier] ignored progress line'))).toHaveLength(3);
    expect(world.logLines(task.taskId, 'stdout')).toEqual(['via fd3']);
    expect(world.eventsOf(task.taskId).find((e) => e.kind === 'progress')).toMatchObject({ fraction: 0.25, message: 'quarter' });
  });

  it('batches many log lines into few log events and cuts long lines', async () => {
    const task = await run(
      {
        'main.mjs': `
          for (let i = 0; i < 3000; i++) console.log('line ' + i);
          console.log('x'.repeat(5000));
        `,
      },
      { entrypoint: 'main.mjs', runtime: 'node' },
      {},
      { logBatch: { bytes: 64 * 1024, ms: 250 } },
      { maxLogLineBytes: 1024 },
    );
    await world.result(task.taskId);
    const logEvents = world.eventsOf(task.taskId).filter((e) => e.kind === 'log');
    const lines = world.logLines(task.taskId, 'stdout');
    expect(lines).toHaveLength(3001);
    expect(lines.slice(0, 3000)).toEqual(Array.from({ length: 3000 }, (_, i) => `line ${i}`));
    // One event per 64 KiB or per 250 ms of output, not one per line: as many as the span the lines were sent over
    // allows (a loaded machine stretches it), and the bytes' own few.
    const sentAt = logEvents.map((e) => Date.parse(e.at));
    expect(logEvents.length).toBeLessThanOrEqual(2 + Math.floor((Math.max(...sentAt) - Math.min(...sentAt)) / 250) + 1);
    expect(lines[3000]).toMatch(/^x{1024} …\[line cut at 1024 bytes\]$/);
  });

  it('caps the log bytes of an attempt with a truncation notice, and says how many bytes it dropped', async () => {
    const task = await run(
      { 'main.mjs': "for (let i = 0; i < 1000; i++) console.log('y'.repeat(99));" },
      { entrypoint: 'main.mjs', runtime: 'node' },
      {},
      { maxLogBytes: 10_000 },
    );
    expect((await world.result(task.taskId)).outcome.state).toBe('SUCCEEDED');
    expect(world.logLines(task.taskId, 'stdout')).toHaveLength(100);
    // 1000 lines of 100 bytes: the first 100 kept, the line past the cap and the 899 after it dropped and counted.
    expect(world.logLines(task.taskId, 'stderr')).toEqual([
      expect.stringContaining("log output truncated: an attempt's log keeps its first 10000 bytes"),
      expect.stringContaining('log output truncated: 90000 bytes dropped'),
    ]);
  });

  it('sends heartbeats while the module runs', async () => {
    // The module runs until the test has seen three heartbeats, not a fixed half second: on a loaded machine the
    // host's timer may fire fewer times in that. Unsandboxed, so that it sees the file that ends it.
    const done = path.join(scratch.root, 'beats-seen');
    const task = await run(
      { 'main.sh': `while [ ! -e '${done}' ]; do sleep 0.02; done\n` },
      { entrypoint: 'main.sh', runtime: 'shell' },
      {},
      { heartbeatMs: 100 },
      { isolation: 'none' },
    );
    await waitFor(() => world.eventsOf(task.taskId).filter((e) => e.kind === 'heartbeat').length >= 3, 'three heartbeats');
    writeFileSync(done, '');
    expect((await world.result(task.taskId)).outcome.state).toBe('SUCCEEDED');
    const beats = world.eventsOf(task.taskId).filter((e) => e.kind === 'heartbeat');
    expect(world.timeline.filter((t) => t === `working:${task.taskId}`).length).toBe(beats.length);
  });

  it('host stop() stops the process, leaves the task unacked, and another host runs it', async () => {
    const marker = path.join(scratch.root, 'ran-once');
    const task = await run(
      {
        'main.mjs': `
          import { existsSync, writeFileSync } from 'node:fs';
          import { spawn } from 'node:child_process';
          const { marker } = JSON.parse(process.env.ATELIER_PARAMS);
          if (existsSync(marker)) { writeFileSync(marker + '-again', '1'); process.exit(0); }
          writeFileSync(marker, '1');
          const child = spawn('sleep', ['30'], { stdio: 'ignore' });
          console.log('grandchild ' + child.pid + ' 30');
          setInterval(() => {}, 1000);
        `,
      },
      { entrypoint: 'main.mjs', runtime: 'node' },
      { parameters: { marker } },
      { ackWaitMs: 3_000 },
      // Unsandboxed (the operator's opt-out): the marker that proves the second run lies outside any sandbox.
      { isolation: 'none' },
    );
    const pid = await grandchildPid(task.taskId);
    await lastHost.stop();
    expect(lastHost.running()).toBe(0);
    expect(processAlive(pid)).toBe(false);
    expect(world.resultOf(task.taskId)).toBeUndefined();
    expect(world.timeline).not.toContain(`ack:${task.taskId}`);

    await world.startHost([createLocalExecutor({ graceMs: 300, isolation: 'none' })], { hostName: 'host-b' });
    await waitFor(() => world.timeline.includes(`ack:${task.taskId}`), 'the ack by host-b');
    expect(existsSync(`${marker}-again`)).toBe(true);
  });
});

describe('local executor, called directly', () => {
  it('submit is idempotent per attempt, and cancel accepts a handle whose process is gone', async () => {
    const { archive, digest } = await buildModule(scratch.root, 'direct', { 'main.sh': 'sleep 30\n' });
    const executor = createLocalExecutor({ graceMs: 100 });
    const controller = new AbortController();
    const ctx: TaskContext = {
      signal: controller.signal,
      get aborted() {
        return controller.signal.aborted;
      },
      workdir: path.join(scratch.root, 'direct-work'),
      host: 'h',
      artifactPath: async () => archive,
      log: () => undefined,
      progress: () => undefined,
      metric: () => undefined,
      output: () => undefined,
    };
    const task = makeTask({ module: { digest } }); // every unpack is checked against the task's digest
    const first = await executor.submit(task, ctx);
    const second = await executor.submit(task, ctx);
    expect(second).toEqual(first);
    if (first.pid === null) throw new Error(first.error);
    const waiting = executor.wait(first, task, ctx);
    await executor.cancel(first, task, 'cancelled');
    await executor.cancel(first, task, 'cancelled');
    const outcome = await waiting;
    expect(outcome.state).toBe('CANCELLED');
    await executor.finalize!(first, task, outcome);
    expect(processAlive(first.pid)).toBe(false);
    await executor.cancel(first, task, 'cancelled');
    await executor.cancel({ pid: 2 ** 22 - 1, pgid: 2 ** 22 - 1, startTime: 1 }, task, 'cancelled');
    await executor.close!();
  });
});
