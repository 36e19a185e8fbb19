// What a task's events cost in JSON on the control plane, from the bus' delivery (the parsed bundle) to the live feed's
// publish (issue 21, session 32), counted: the task_events rows', the success update's, the run's end's, the feed's
// append (its run_events rows) and the publish (the bus' messages, split by its max payload) each serialize their part,
// so a feed event is serialized twice (the append's and the publish's) and a progress message four times. Serializing
// each feed event once and building both from its string did not cost less (docs/performance.md, "S1: an event
// serialized once (session 32)"): these counts are today's, kept so that a change is seen. And what is stored is what
// subscribers receive, byte for byte on the wire as JSON.stringify makes it: a result, a failure with an error,
// progress, metrics and a log. Real Postgres, the recorder's own orchestrator, a feed whose transport packs its
// messages as the JetStream bus does (packWithin).
import { and, eq } from 'drizzle-orm';
import { beforeAll, expect, it, vi } from 'vitest';
import { packWithin } from '../../plugins/bus/payload-limit';
import type { ExecutorEvent } from '../../plugins/protocol';
import { tasks } from '../../server/db/tables/runs';
import { createRunFeed, type FeedEvent } from '../../server/events/feed';
import { createOrchestrator, type Orchestrator } from '../../server/orchestrator/orchestrator';
import { countedApp, oneTask } from '../harness/counted-app';

const w = countedApp({ workflows: [oneTask()] });
let orchestrator: Orchestrator;
let feed: ReturnType<typeof createRunFeed>;
/** What the feed's transport was handed, and the messages it made of it. */
const published: { events: FeedEvent[]; messages: string[]; tooLarge: (event: unknown) => unknown }[] = [];
/** nats-server's default; the second test shrinks it so that a log event goes as a reference. */
let maxPayload = 1024 * 1024;

// The recorder's own orchestrator, on a feed whose transport packs its messages as the JetStream bus does.
beforeAll(() => {
  feed = createRunFeed({
    db: w.db,
    transport: {
      publish(events, tooLarge) {
        published.push({ events, messages: packWithin(events, maxPayload, tooLarge), tooLarge });
      },
    },
  });
  orchestrator = createOrchestrator({ db: w.db, feed, onOutbox: () => {}, defaults: { timeoutMs: 60_000, executor: 'local' } });
});

async function queuedTask(): Promise<{ runId: string; base: Omit<ExecutorEvent, 'kind' | 'seq'> }> {
  const runId = (await w.alice.gql(`mutation { startRun(workflow: "one-task") { id } }`)).startRun.id as string;
  const [task] = await w.db
    .select()
    .from(tasks)
    .where(and(eq(tasks.runId, runId), eq(tasks.status, 'QUEUED')));
  return { runId, base: { taskId: task!.id, runId, attempt: task!.attempt, host: 'test-host', at: new Date().toISOString() } };
}

/** A no-op attempt's one bundle (what the host publishes, parsed as the bus delivers it): its start, progress and result. */
const noopBundle = (base: Omit<ExecutorEvent, 'kind' | 'seq'>): ExecutorEvent[] =>
  JSON.parse(
    JSON.stringify([
      { ...base, kind: 'started', seq: 0, handle: { startedAt: base.at } },
      { ...base, kind: 'progress', seq: 1, fraction: 1, message: 'done ✓ once' },
      { ...base, kind: 'result', seq: 2, outcome: { state: 'SUCCEEDED', outputs: { echo: { ms: 1 } } }, durationMs: 3 },
    ]),
  );

it("serializes a no-op task's feed events twice each, from the bus' delivery to the live feed's publish", async () => {
  const warm = await queuedTask();
  await orchestrator.recordEvents(noopBundle(warm.base)); // statements prepared, caches filled
  const { runId, base } = await queuedTask();
  const events = noopBundle(base);
  published.length = 0;
  const stringify = vi.spyOn(JSON, 'stringify');
  let outputs: string[];
  try {
    await orchestrator.recordEvents(events);
  } finally {
    outputs = stringify.mock.results.map((r) => (r.type === 'return' && typeof r.value === 'string' ? r.value : ''));
    stringify.mockRestore();
  }
  const holding = (part: string) => outputs.filter((o) => o.includes(part)).length;
  const bytes = outputs.reduce((n, o) => n + o.length, 0);
  // For the record (docs/performance.md): every call and its bytes, the rows' JSON included.
  console.log(`JSON.stringify while recording a no-op task: ${outputs.length} calls, ${bytes} characters`);

  // The feed's events: the task's progress, its RUNNING and SUCCEEDED, the run's RUNNING and SUCCEEDED.
  expect(published).toHaveLength(1);
  const told = published[0]!.events;
  expect(told.map((e) => `${e.kind}:${'status' in e ? e.status : ''}`).sort()).toEqual([
    'run-status:RUNNING',
    'run-status:SUCCEEDED',
    'task-progress:',
    'task-status:RUNNING',
    'task-status:SUCCEEDED',
  ]);
  // A ceiling, not a pin (fewer is welcome): each serialized twice today, the append's rows and the publish. The progress' message four times: the task_events row
  // that carries it, the success's update (the task's last progress message), the append and the publish. (7 calls,
  // 3,406 characters in all; serialized once and spliced, 10 calls and 2,370 characters, but more CPU.)
  expect(holding('"kind":"task-progress"')).toBeLessThanOrEqual(2);
  expect(holding('"status":"RUNNING","attempt"')).toBeLessThanOrEqual(2);
  expect(holding('"status":"SUCCEEDED","attempt"')).toBeLessThanOrEqual(2);
  expect(holding(`"kind":"run-status","runId":"${runId}","status":"RUNNING"`)).toBeLessThanOrEqual(2);
  expect(holding('done ✓ once')).toBeLessThanOrEqual(4);
  // The messages are what JSON.stringify makes of the events, byte for byte.
  expect(published[0]!.messages).toEqual([JSON.stringify(told)]);
}, 60_000);

it('stores and publishes the same JSON as before for a result, a failure with an error, progress, metrics and a log', async () => {
  const cases: ((base: Omit<ExecutorEvent, 'kind' | 'seq'>) => ExecutorEvent[])[] = [
    noopBundle,
    (base) => [
      { ...base, kind: 'started', seq: 0, handle: null },
      {
        ...base,
        kind: 'result',
        seq: 1,
        outcome: { state: 'FAILED', reason: 'exit-code', message: 'exited with 3: “boom”\n\u0001', exitCode: 3 },
        durationMs: 5,
      },
    ],
    (base) => [
      { ...base, kind: 'started', seq: 0, handle: { pid: 7 } },
      { ...base, kind: 'progress', seq: 1, fraction: 0.25, message: 'a quarter ü' },
      {
        ...base,
        kind: 'metric',
        seq: 2,
        firstPoint: 0,
        points: [
          { name: 'loss', value: 0.5, step: 1, at: 1 },
          { name: 'loss', value: 'NaN', step: 2, at: 2 },
          { name: 'acc', value: 0.75, step: 2, at: 2 },
        ],
      },
      { ...base, kind: 'log', seq: 3, stream: 'stdout', lines: ['one', 'two “quoted” \\ ✓', ''] },
      { ...base, kind: 'progress', seq: 4, fraction: null, message: null },
    ],
    // A log line too large for a bus message alone (the payload limit shrunk below): it goes as a reference.
    (base) => [{ ...base, kind: 'log', seq: 5, stream: 'stderr', lines: ['x'.repeat(3000)] }],
  ];
  for (const [i, make] of cases.entries()) {
    const { runId, base } = await queuedTask();
    const limit = i === 3 ? 2000 : 1024 * 1024;
    maxPayload = limit;
    published.length = 0;
    try {
      await orchestrator.recordEvents(make(base));
    } finally {
      maxPayload = 1024 * 1024;
    }
    expect(published.length).toBeGreaterThan(0);
    if (i === 3) expect(published.flatMap((p) => p.messages).join()).toContain('"kind":"stored"');
    for (const { events: told, messages, tooLarge } of published) {
      // What the bus sent is what packWithin made of the events by serializing them itself (the way before), byte for byte.
      expect(messages).toEqual(packWithin(told, limit, tooLarge));
    }
    // What is stored is what was published: the same JSON values, read back from run_events (metric points included).
    const sent = published.flatMap((p) => p.events);
    const stored = await feed.since(runId, 0);
    const storedSent = stored.filter((e) => sent.some((s) => s.seq === e.seq));
    expect(storedSent).toEqual(JSON.parse(JSON.stringify(sent)));
  }
}, 60_000);
