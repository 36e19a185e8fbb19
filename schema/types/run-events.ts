// Live run events: the RunEvent union and the `runEvents` (one run: a snapshot, then live changes merged with
// it) and `allRunEvents` (every readable run, live only) subscriptions.
import { forbidden } from '../../server/errors';
import { type FeedEvent, feedIterator } from '../../server/events/feed';
import { findRun, runById, runDomainOf, tasksOfRuns } from '../../server/runs/queries';
import type { Domain } from '../../server/vocabulary';
import { builder } from '../builder';
import { checkId, isUuid } from '../ids';
import { liveStream, mayWatch, watchAccess } from '../live-access';
import { RunStatusEnum, TaskStatusEnum } from './enums';
import { RunRef } from './runs';

type Of<K extends FeedEvent['kind']> = Extract<FeedEvent, { kind: K }>;
// The fields every event type shares; `t` is the field builder of whichever event type spreads them in.
const eventFields = <T extends FeedEvent>(t: PothosSchemaTypes.ObjectFieldBuilder<(typeof builder)['$inferSchemaTypes'], T>) => ({
  runId: t.id({ resolve: (e: T) => e.runId }),
  at: t.string({ resolve: (e: T) => e.at }),
});

const RunStatusEvent = builder.objectRef<Of<'run-status'>>('RunStatusEvent').implement({
  fields: (t) => ({
    ...eventFields(t),
    // Not `status`: a union member's field may not clash in type with TaskStatusEvent.status.
    runStatus: t.field({ type: RunStatusEnum, resolve: (e) => e.status }),
    message: t.exposeString('message', { nullable: true }),
  }),
});
const TaskStatusEvent = builder.objectRef<Of<'task-status'>>('TaskStatusEvent').implement({
  fields: (t) => ({
    ...eventFields(t),
    taskId: t.exposeID('taskId'),
    node: t.exposeString('node'),
    status: t.field({ type: TaskStatusEnum, resolve: (e) => e.status }),
    attempt: t.exposeInt('attempt'),
    reason: t.exposeString('reason', { nullable: true }),
    message: t.exposeString('message', { nullable: true }),
  }),
});
const TaskProgressEvent = builder.objectRef<Of<'task-progress'>>('TaskProgressEvent').implement({
  fields: (t) => ({
    ...eventFields(t),
    taskId: t.exposeID('taskId'),
    node: t.exposeString('node'),
    fraction: t.exposeFloat('fraction', { nullable: true }),
    message: t.exposeString('message', { nullable: true }),
  }),
});
const TaskLogEvent = builder.objectRef<Of<'task-log'>>('TaskLogEvent').implement({
  fields: (t) => ({
    ...eventFields(t),
    taskId: t.exposeID('taskId'),
    node: t.exposeString('node'),
    stream: t.exposeString('stream'),
    lines: t.exposeStringList('lines'),
  }),
});
const TaskMetricEvent = builder.objectRef<Of<'task-metric'>>('TaskMetricEvent').implement({
  fields: (t) => ({
    ...eventFields(t),
    taskId: t.exposeID('taskId'),
    node: t.exposeString('node'),
    metrics: t.expose('metrics', { type: 'JSON' }),
    step: t.exposeInt('step', { nullable: true }),
  }),
});

const typeOfKind = {
  'run-status': 'RunStatusEvent',
  'task-status': 'TaskStatusEvent',
  'task-progress': 'TaskProgressEvent',
  'task-log': 'TaskLogEvent',
  'task-metric': 'TaskMetricEvent',
} as const;

const RunEvent = builder.unionType('RunEvent', {
  types: [RunStatusEvent, TaskStatusEvent, TaskProgressEvent, TaskLogEvent, TaskMetricEvent],
  resolveType: (e) => typeOfKind[(e as FeedEvent).kind],
});

const terminalRun = new Set(['SUCCEEDED', 'FAILED', 'CANCELLED']);

builder.subscriptionField('runEvents', (t) =>
  t.field({
    type: RunEvent,
    description:
      'Everything that happens in a run, live: first the current state (the run and each task), then status changes, progress, log lines and metrics. Completes after the run ends. Ends with FORBIDDEN if the access to the run’s domain is revoked meanwhile.',
    args: { runId: t.arg.id({ required: true }) },
    // Authorized when subscribing (authorizeOnSubscribe): the caller must be able to read this run's events.
    authScopes: async (_root, args, ctx) => {
      const run = isUuid(String(args.runId)) ? await RunRef.getDataloader(ctx).load(String(args.runId)) : null;
      return run ? mayWatch(ctx.ability, run) : ctx.ability.can('read', 'Run'); // an unknown run: the resolver says NOT_FOUND
    },
    unauthorizedError: () =>
      forbidden(
        'A run’s events hold its data (logs, metrics, messages): watching them needs a grant to the run’s domain for one of your teams; an admin grants one with `npx atelier team grant TEAM DOMAIN`.',
      ),
    // The slot is taken when subscribing (refused past the limits); it and the feed listener go when the stream ends.
    subscribe: (_root, args, ctx) => {
      const runId = checkId(String(args.runId), 'run');
      return liveStream(ctx, async function* (live) {
        const run = await findRun(ctx.services.db, runId);
        const watch = watchAccess(ctx, live, (ability) => mayWatch(ability, run));
        // Subscribe before reading the snapshot, so nothing that happens in between is missed.
        const events = feedIterator(ctx.services.feed, runId, live.signal);
        try {
          const snapshot = await tasksOfRuns(ctx.services.db, [runId]);
          const current = (await runById(ctx.services.db, runId))!;
          const at = new Date().toISOString();
          for (const task of snapshot) {
            yield {
              kind: 'task-status',
              runId,
              taskId: task.id,
              node: task.node,
              status: task.status,
              attempt: task.attempt,
              reason: task.reason,
              message: task.message,
              at,
            } as FeedEvent;
          }
          yield { kind: 'run-status', runId, status: current.status, message: current.message, at } as FeedEvent;
          if (terminalRun.has(current.status)) return;
          // A change that landed between subscribing and reading the snapshot arrives live too: each state the
          // snapshot already showed is passed over once, so a subscriber sees every change exactly once.
          const shown = new Map<string, string>(snapshot.map((task) => [task.id, `${task.status}|${task.attempt}|${task.message ?? ''}`]));
          shown.set(runId, `${current.status}|${current.message ?? ''}`);
          for await (const event of events) {
            const key = event.kind === 'task-status' ? event.taskId : event.kind === 'run-status' ? runId : null;
            if (key !== null && shown.has(key)) {
              const state =
                event.kind === 'task-status'
                  ? `${event.status}|${event.attempt}|${event.message ?? ''}`
                  : event.kind === 'run-status'
                    ? `${event.status}|${event.message ?? ''}`
                    : '';
              const seen = shown.get(key) === state;
              shown.delete(key);
              if (seen) continue;
            }
            yield event;
            if (event.kind === 'run-status' && terminalRun.has(event.status)) return;
          }
          watch.assertStillValid();
        } finally {
          await events.return?.();
        }
      });
    },
    resolve: (event) => event,
  }),
);

builder.subscriptionField('allRunEvents', (t) =>
  t.field({
    type: RunEvent,
    description: 'Every event of every run whose events you may read, live, with no snapshot: the feed behind live run lists and monitors.',
    authScopes: { can: ['read', 'Run'] },
    subscribe: (_root, _args, ctx) =>
      liveStream(ctx, async function* (live) {
        const watch = watchAccess(ctx, live);
        // Each run's domain, read once: an event is passed on only if its run's events are readable now.
        const domainOf = new Map<string, Promise<Domain | null>>();
        const domainOfRun = (id: string) => {
          let domain = domainOf.get(id);
          if (!domain) {
            if (domainOf.size > 10_000) domainOf.clear();
            domain = runDomainOf(ctx.services.db, id);
            domainOf.set(id, domain);
          }
          return domain;
        };
        for await (const event of feedIterator(ctx.services.feed, '*', live.signal)) {
          const domain = await domainOfRun(event.runId);
          if (domain && mayWatch(watch.ability(), { domain })) yield event;
        }
        watch.assertStillValid();
      }),
    resolve: (event) => event,
  }),
);
