// Live run events: the RunEvent union and the `runEvents` (one run: a snapshot, then live changes merged with
// it) and `allRunEvents` (every readable run, live only) subscriptions.
import { traceHop } from '../../plugins/trace';
import { isUuid } from '../../server/db/uuid';
import { badInput, forbidden, notFound } from '../../server/errors';
import { type FeedEvent, feedIterator, runEventStream } from '../../server/events/feed';
import { snapshotEvents } from '../../server/events/run-snapshots';
import { runDomainOf, runToWatch } from '../../server/runs/queries';
import type { Domain } from '../../server/vocabulary';
import { builder } from '../builder';
import type { Context } from '../context';
import { checkId } from '../ids';
import { liveStream, mayWatch, noteSeq, watchAccess } from '../live-access';
import { RunStatusEnum, TaskStatusEnum } from './enums';

type Of<K extends FeedEvent['kind']> = Extract<FeedEvent, { kind: K }>;
// The fields every event type shares; `t` is the field builder of whichever event type spreads them in.
const eventFields = <T extends FeedEvent>(t: PothosSchemaTypes.ObjectFieldBuilder<(typeof builder)['$inferSchemaTypes'], T>) => ({
  runId: t.id({ resolve: (e: T) => e.runId }),
  at: t.string({ resolve: (e: T) => e.at }),
  seq: t.int({
    description:
      'The event’s number in its run (1, 2, 3… in the order they were stored; a snapshot’s events carry the latest). Resume with `runEvents(after: seq)`.',
    resolve: (e: T) => e.seq,
  }),
});

const RunStatusEvent = builder.objectRef<Of<'run-status'>>('RunStatusEvent').implement({
  fields: (t) => ({
    ...eventFields(t),
    // Not `status`: a union member's field may not clash in type with TaskStatusEvent.status.
    runStatus: t.field({ type: RunStatusEnum, resolve: (e) => e.status }),
    message: t.exposeString('message', { nullable: true }),
    deadlineAt: t.string({
      nullable: true,
      description:
        'The deadline its time limit set (ISO), on the event of its admission and in snapshots: a run held back by maxActiveRuns gets it when admitted. Null: none, or not said by this event.',
      resolve: (e) => e.deadlineAt ?? null,
    }),
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
    attempt: t.exposeInt('attempt', { nullable: true }),
    points: t.expose('points', {
      type: 'JSON',
      description: 'Every point of this batch in report order: [{ name, value, step, seq }]; NaN and ±Infinity as the strings "NaN", "Infinity", "-Infinity".',
    }),
    metrics: t.expose('metrics', { type: 'JSON', description: 'The batch’s last value of each metric.' }),
    step: t.exposeInt('step', { nullable: true, description: 'The step of the batch’s last point.' }),
  }),
});

/** `allRunEvents(announce: true)`'s first event: the feed listens from here on. Never stored, never numbered. */
interface FeedListening {
  kind: 'listening';
  at: string;
}
const RunFeedListening = builder.objectRef<FeedListening>('RunFeedListening').implement({
  description:
    'The first event of `allRunEvents(announce: true)`: from it on, no event is missed. A list read after it, and kept up to date with the events that follow, misses no run.',
  fields: (t) => ({
    at: t.exposeString('at'),
  }),
});

const typeOfKind = {
  'run-status': 'RunStatusEvent',
  'task-status': 'TaskStatusEvent',
  'task-progress': 'TaskProgressEvent',
  'task-log': 'TaskLogEvent',
  'task-metric': 'TaskMetricEvent',
  listening: 'RunFeedListening',
} as const;

const RunEvent = builder.unionType('RunEvent', {
  types: [RunStatusEvent, TaskStatusEvent, TaskProgressEvent, TaskLogEvent, TaskMetricEvent, RunFeedListening],
  resolveType: (e) => typeOfKind[(e as FeedEvent | FeedListening).kind],
});

const terminalRun = new Set(['SUCCEEDED', 'FAILED', 'CANCELLED']);

/**
 * The run a `runEvents` subscription watches, read once per request (its authScopes and its stream share the read),
 * its four columns only: a thousand subscribers each loading the whole row built and mapped ~1,000 wide selects.
 */
const watchedRuns = new WeakMap<object, Map<string, ReturnType<typeof runToWatch>>>();
function watchedRun(ctx: Context, runId: string): ReturnType<typeof runToWatch> {
  let byId = watchedRuns.get(ctx);
  if (!byId) watchedRuns.set(ctx, (byId = new Map()));
  let run = byId.get(runId);
  if (!run) byId.set(runId, (run = runToWatch(ctx.services.db, runId)));
  return run;
}

/** Where a resume starts: `after`, else SSE's `Last-Event-ID` header, else nowhere (a snapshot first). */
function resumeFrom(after: number | null | undefined, lastEventId: string | null | undefined): number | null {
  if (after !== null && after !== undefined) {
    if (after < 0) throw badInput('`after` is the `seq` of the last event you received (0 or more).', [{ path: 'after', message: 'must be 0 or more' }]);
    return after;
  }
  if (!lastEventId) return null;
  const seq = Number(lastEventId);
  if (!Number.isSafeInteger(seq) || seq < 0)
    throw badInput(`Last-Event-ID "${lastEventId}" is not an event's \`seq\`: send back the id of the last event you received.`, [
      { path: 'Last-Event-ID', message: 'must be a number' },
    ]);
  return seq;
}

builder.subscriptionField('runEvents', (t) =>
  t.field({
    type: RunEvent,
    description:
      'Everything that happens in a run, live: first the current state (the run and each task, each carrying the run’s latest `seq`), then status changes, progress, log lines and metrics in `seq` order, none lost and none twice. With `after` (or, over SSE, a `Last-Event-ID` header) it resumes instead: exactly the events numbered above it, then live. Completes after the run ends. Ends with FORBIDDEN if the access to the run’s domain is revoked meanwhile.',
    args: {
      runId: t.arg.id({ required: true }),
      after: t.arg.int({ description: 'The `seq` of the last event already received: resume right after it, with no snapshot.' }),
    },
    // Authorized when subscribing (authorizeOnSubscribe): the caller must be able to read this run's events.
    authScopes: async (_root, args, ctx) => {
      const run = isUuid(String(args.runId)) ? await watchedRun(ctx, String(args.runId)) : null;
      return run ? mayWatch(ctx.ability, run) : ctx.ability.can('read', 'Run'); // an unknown run: the resolver says NOT_FOUND
    },
    unauthorizedError: () =>
      forbidden(
        'A run’s events hold its data (logs, metrics, messages): watching them needs a grant to the run’s domain for one of your teams; an admin grants one with `npx atelier team grant TEAM DOMAIN`.',
      ),
    // The slot is taken when subscribing (refused past the limits); it and the feed listener go when the stream ends.
    subscribe: (_root, args, ctx) => {
      const runId = checkId(String(args.runId), 'run');
      const after = resumeFrom(args.after, ctx.lastEventId);
      return liveStream(ctx, async function* (live) {
        // The run as authScopes read it, after the caller's request came in.
        const run = await watchedRun(ctx, runId);
        if (!run) throw notFound(`No run ${runId}; \`atelier run list\` shows the recent ones.`);
        const watch = watchAccess(ctx, live, (ability) => mayWatch(ability, run));
        // Listening starts before anything is read, so nothing stored meanwhile is missed; it follows on from the
        // snapshot's number, or from `after` once what was stored since has been read.
        let from!: (seq: number) => void;
        const start = new Promise<number>((resolve) => (from = resolve));
        const events = runEventStream(ctx.services.feed, runId, start, after !== null, live.signal);
        try {
          if (after === null) {
            // The state as of one event number (no event of the run is stored while it is read), once no success
            // whose model registrations are under way holds the run (as its live events wait for them); read once
            // for every subscriber asking meanwhile, the same event objects for all of them (run-snapshots.ts).
            const snapshot = (await ctx.services.feed.snapshot(runId)) ?? snapshotEvents(runId, { run, tasks: [] }, new Date().toISOString());
            yield* snapshot.events;
            if (terminalRun.has(snapshot.status)) return;
            from(snapshot.seq);
          } else {
            if (after > run.eventSeq)
              throw badInput(
                `This run’s latest event is number ${run.eventSeq}, so there is nothing after ${after} to resume from: subscribe without \`after\` for its current state.`,
                [{ path: 'after', message: `at most ${run.eventSeq}` }],
              );
            if (terminalRun.has(run.status) && after === run.eventSeq) return; // it ended, and the caller saw it
            from(after);
          }
          // A resume of a run that had ended stops at its last event, even one stored after its terminal status.
          const last = after !== null && terminalRun.has(run.status) ? run.eventSeq : Number.POSITIVE_INFINITY;
          for await (const event of events) {
            yield event;
            if ((event.kind === 'run-status' && terminalRun.has(event.status)) || event.seq >= last) return;
          }
          watch.assertStillValid();
        } finally {
          await events.return?.();
        }
      });
    },
    resolve: (event, _args, ctx) => {
      noteSeq(ctx, event.seq);
      return event;
    },
  }),
);

builder.subscriptionField('allRunEvents', (t) =>
  t.field({
    type: RunEvent,
    description:
      'Every event of every run whose events you may read, live, with no snapshot: the feed behind live run lists and monitors. Within a run it has seen, a skipped `seq` is filled in; for a run’s exact state, use `runEvents`.',
    args: {
      announce: t.arg.boolean({
        description:
          'Send a `RunFeedListening` event first, once the feed listens: read your list after it (not before subscribing), and no run that starts or changes in between is missed.',
      }),
    },
    authScopes: { can: ['read', 'Run'] },
    subscribe: (_root, args, ctx) =>
      liveStream<FeedEvent | FeedListening>(ctx, async function* (live) {
        const watch = watchAccess(ctx, live);
        // Each run's domain, read once: an event is passed on only if its run's events are readable now. A new run's
        // first event carries it (a run's domain never changes), so no subscriber reads it for the runs it sees start.
        const domainOf = new Map<string, Promise<Domain | null>>();
        const domainOfRun = (event: FeedEvent) => {
          let domain = domainOf.get(event.runId);
          if (!domain) {
            if (domainOf.size > 10_000) domainOf.clear();
            domain = event.kind === 'run-status' && event.domain ? Promise.resolve(event.domain) : runDomainOf(ctx.services.db, event.runId);
            domainOf.set(event.runId, domain);
          }
          return domain;
        };
        // Per run seen, the last number passed on: a number skipped is read from the store, a repeat is dropped.
        const last = new Map<string, number>();
        // Listening from here on (the iterator takes events as soon as it is made): said before the first one.
        const events = feedIterator(ctx.services.feed, '*', live.signal);
        if (args.announce) yield { kind: 'listening', at: new Date().toISOString() };
        for await (const event of events) {
          if (event.kind === 'task-progress') traceHop('control plane: subscription woken', event.runId);
          const before = last.get(event.runId);
          if (before !== undefined && event.seq <= before) continue;
          if (last.size > 10_000) last.clear();
          const missed = before !== undefined && event.seq > before + 1 ? await ctx.services.feed.since(event.runId, before).catch(() => []) : [];
          const domain = await domainOfRun(event);
          for (const e of [...missed.filter((m) => m.seq < event.seq), event]) {
            last.set(e.runId, e.seq);
            if (e.kind === 'task-progress') traceHop('control plane: subscription yields', e.runId);
            if (domain && mayWatch(watch.ability(), { domain })) yield e;
          }
        }
        watch.assertStillValid();
      }),
    resolve: (event, _args, ctx) => {
      if ('seq' in event) noteSeq(ctx, event.seq);
      return event;
    },
  }),
);
