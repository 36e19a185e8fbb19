// The scheduler: on each tick, the leader replica claims the fire times that fell due (applying each schedule's
// catch-up policy), then starts their runs (applying its overlap policy). A fire time is claimed by inserting its
// UNIQUE (schedule, fire time) row and its run is started with an idempotency key derived from the same pair, so
// it fires exactly once even if two leaders overlap or the process dies between the two steps.
import { subject } from '@casl/ability';
import { and, asc, eq, gt, inArray, lte } from 'drizzle-orm';
import { audit, audited } from '../audit/audit';
import { defineAbilityFor } from '../auth/ability';
import { grantsOf } from '../auth/grants';
import { type Db, withTryAdvisoryLock } from '../db/client';
import { type Identity, identities } from '../db/tables/identities';
import { runs } from '../db/tables/runs';
import { type NewScheduleFire, type Schedule, type ScheduleFire, scheduleFires, schedules } from '../db/tables/schedules';
import { type Workflow, workflows } from '../db/tables/workflows';
import { AtelierError } from '../errors';
import { cancelPrevious } from '../orchestrator/cancel-previous';
import { findRunByKey } from '../orchestrator/idempotency';
import type { Orchestrator } from '../orchestrator/orchestrator';
import { scheduleActor } from '../orchestrator/run-actor';
import { owningTeamName } from '../teams/ownership';
import { domainsGrantedTo } from '../teams/queries';
import { type Domain, type FireOutcome, moreGuarded, type RunStatus } from '../vocabulary';
import { dueFireTimes, fireTimeText, nextFireTime } from './cron';
import { emitScheduleMisfired } from './misfire-events';
import { scheduleMayNotFire } from './ownership';
import { timingOf } from './schedules';

export interface SchedulerOptions {
  db: Db;
  orchestrator: Pick<Orchestrator, 'startRun' | 'cancelRun'>;
  clock: { now(): Date };
  /** How often `start()` ticks (default 1 s). */
  tickMs?: number;
  log?: (message: string) => void;
  /**
   * Take the Postgres advisory lock so only one replica works per tick. Default: on for a pooled Postgres client,
   * off for PGlite, where no other replica can exist and a lock transaction held during the tick would block its
   * single connection.
   */
  leaderLock?: boolean;
  /** A fire time found due later than this is "missed" and follows the catch-up policy (default 60 s). */
  misfireGraceMs?: number;
  /** An unexpected error starting a run is retried on later ticks for this long, then recorded FAILED (default 10 min). */
  retryWindowMs?: number;
  /** Called after a claim that wrote webhook deliveries (`schedule.misfired`) committed: kick the delivery worker. */
  onWebhooks?: () => void;
}

export interface Scheduler {
  /** Ticks every `tickMs` until `stop()`; a slow tick is never overlapped by the next. */
  start(): void;
  /** Stops ticking and waits for a tick in progress. */
  stop(): Promise<void>;
  /** One pass: claim due fire times, start their runs. Safe to call from several replicas at once. */
  tick(): Promise<void>;
}

// Any fixed number, distinct from the migration lock's.
const LEADER_LOCK = 0x61746c73;
const BATCH = 500;
/** A backfill's fires started per tick, after every on-time one. */
const BACKFILL_PER_TICK = 50;
/** At most this many missed fire times of a schedule are recorded per tick; older ones are only counted. */
const MISSED_RECORDED = 100;
const ACTIVE: RunStatus[] = ['QUEUED', 'RUNNING'];

/** The run of a fire time has this idempotency key: starting it twice returns the first run. */
export const fireKey = (scheduleId: string, fireTime: Date) => `schedule:${scheduleId}:${fireTime.toISOString()}`;

export function createScheduler(options: SchedulerOptions): Scheduler {
  const { db, orchestrator, clock } = options;
  const log = options.log ?? (() => {});
  const graceMs = options.misfireGraceMs ?? 60_000;
  const retryWindowMs = options.retryWindowMs ?? 10 * 60_000;
  // postgres-js hands drizzle a callable `sql` (a pool); PGlite is a plain object with one connection.
  const leaderLock = options.leaderLock ?? typeof (db as unknown as { $client?: unknown }).$client === 'function';

  // --- claiming ------------------------------------------------------------------------------------------

  /** Splits the due fire times into those to run and those missed, by the schedule's catch-up policy. */
  function decide(schedule: Schedule, due: Date[], now: Date): { run: Date[]; missed: Date[]; why: string } {
    const latest = due.at(-1)!;
    switch (schedule.catchUp) {
      case 'SKIP': {
        const onTime = now.getTime() - latest.getTime() <= graceMs;
        return { run: onTime ? [latest] : [], missed: onTime ? due.slice(0, -1) : due, why: 'catch-up policy SKIP runs no missed fire time' };
      }
      case 'LATEST':
        return { run: [latest], missed: due.slice(0, -1), why: `catch-up policy LATEST ran only the latest, ${latest.toISOString()}` };
      case 'ALL': {
        const cut = Math.max(0, due.length - schedule.catchUpLimit);
        return { run: due.slice(cut), missed: due.slice(0, cut), why: `catch-up policy ALL runs at most the latest ${schedule.catchUpLimit}` };
      }
    }
  }

  /** Claims one schedule's due fire times and moves its watermark past them, in one transaction. */
  async function claim(scheduleId: string, now: Date): Promise<void> {
    let webhooksWritten = false;
    await db.transaction(async (tx) => {
      // SKIP LOCKED: a replica already on this schedule keeps it; the unique key would stop a double claim anyway.
      const [schedule] = await tx
        .select()
        .from(schedules)
        .where(and(eq(schedules.id, scheduleId), eq(schedules.paused, false), lte(schedules.nextFireTime, now)))
        .for('update', { skipLocked: true });
      if (!schedule) return;
      const timing = timingOf(schedule);
      const bound = schedule.catchUpLimit + MISSED_RECORDED;
      const { times, truncated } = dueFireTimes(timing, schedule.lastFireTime, now, bound);
      const rows: NewScheduleFire[] = [];
      if (times.length) {
        const { run, missed, why } = decide(schedule, times, now);
        const recorded = missed.slice(-MISSED_RECORDED);
        const unrecorded = truncated || recorded.length < missed.length;
        for (const [i, t] of recorded.entries()) {
          const older = i === 0 && unrecorded ? ' (older missed fire times are not listed)' : '';
          rows.push({
            scheduleId,
            fireTime: t,
            outcome: 'SKIPPED_MISSED',
            message: `missed by ${formatDelay(now.getTime() - t.getTime())}: ${why}${older}`,
            createdAt: now,
          });
        }
        for (const t of run) rows.push({ scheduleId, fireTime: t, outcome: 'PENDING', createdAt: now });
        const inserted = await tx
          .insert(scheduleFires)
          .values(rows)
          .onConflictDoNothing({ target: [scheduleFires.scheduleId, scheduleFires.fireTime] })
          .returning({ fireTime: scheduleFires.fireTime, outcome: scheduleFires.outcome });
        // Only fire times this claim recorded: another leader's claim of the same ones emitted them already.
        const newlyMissed = inserted.filter((r) => r.outcome === 'SKIPPED_MISSED').map((r) => r.fireTime);
        if (newlyMissed.length && (await emitScheduleMisfired(tx, schedule, newlyMissed, unrecorded, why, now))) webhooksWritten = true;
      }
      const last = times.length && times.at(-1)! > schedule.lastFireTime ? times.at(-1)! : schedule.lastFireTime;
      await tx
        .update(schedules)
        .set({ lastFireTime: last, nextFireTime: nextFireTime(timing, last) })
        .where(eq(schedules.id, scheduleId));
    });
    if (webhooksWritten) options.onWebhooks?.();
  }

  // --- starting ------------------------------------------------------------------------------------------

  /** The active runs of the schedule's on-time fires: what its overlap policy weighs (a backfill's runs are other work). */
  async function activeRuns(scheduleId: string): Promise<{ id: string; status: RunStatus }[]> {
    return db
      .select({ id: runs.id, status: runs.status })
      .from(scheduleFires)
      .innerJoin(runs, eq(runs.id, scheduleFires.runId))
      .where(and(eq(scheduleFires.scheduleId, scheduleId), eq(scheduleFires.backfill, false), inArray(runs.status, ACTIVE)))
      .orderBy(asc(scheduleFires.fireTime));
  }

  /**
   * Why this fire may not start a run (audited), or null while it may. A schedule acts for its owners, so it keeps no
   * right they lost: its creator and its owning team must still be granted the run's domain, and its workflow must
   * still be one its owners publish (else another owner's new version would run on this schedule's grants).
   */
  async function mayNotFire(schedule: Schedule, workflow: Workflow, domain: Domain): Promise<string | null> {
    const deny = async (identity: Identity | null, rule: string, message: string) => {
      await audit(db, {
        identity,
        action: 'schedule.fire',
        decision: 'deny',
        subject: `schedule:${schedule.name}`,
        rule,
        details: { domain, workflow: workflow.name },
      });
      return `the run could not start: ${message}`;
    };
    const [creator] = schedule.createdBy ? await db.select().from(identities).where(eq(identities.id, schedule.createdBy)) : [];
    const startRule = 'a schedule starts runs only while its creator and its owning team may';
    // As the token that created it could: a token that may not start runs creates no schedule that does.
    if (creator && !defineAbilityFor(creator, await grantsOf(db, creator), schedule.scopes).can('start', subject('Run', { domain }))) {
      return deny(
        creator,
        startRule,
        `${creator.name}, who created this schedule, may no longer start ${domain} runs (${startRule}); an admin grants the domain to one of their teams with \`npx atelier team grant TEAM ${domain}\`, or someone granted recreates the schedule`,
      );
    }
    if (schedule.teamId && domain !== 'experimentation' && !(await domainsGrantedTo(db, schedule.teamId)).includes(domain)) {
      const team = await owningTeamName(db, schedule);
      return deny(
        creator ?? null,
        startRule,
        `team "${team}", which owns this schedule, is not granted ${domain} (${startRule}); an admin runs \`npx atelier team grant ${team} ${domain}\``,
      );
    }
    const foreign = await scheduleMayNotFire(db, schedule, workflow);
    if (foreign)
      return deny(
        creator ?? null,
        'a schedule fires only workflows its own owners publish',
        `${foreign}; delete it, and a member of the workflow's team schedules it`,
      );
    return null;
  }

  /** Starts the run of a claimed fire time under the overlap policy and records the outcome. */
  async function startFire(fire: ScheduleFire, schedule: Schedule, now: Date): Promise<void> {
    const key = fireKey(schedule.id, fire.fireTime);
    let outcome: FireOutcome;
    let runId: string | null = null;
    let message: string | null = null;
    // Started before a crash (or by another leader) but not recorded yet: the same run, not a second one.
    // The control plane's own key (no identity): a member's run started with the same key is not this fire's run.
    const earlier = await findRunByKey(db, null, key);
    const [workflow] = await db.select().from(workflows).where(eq(workflows.id, schedule.workflowId));
    // Its parameters stay the data of the domain they were set under, should the workflow have moved to a more open one.
    const domain = moreGuarded(workflow!.domain, schedule.parametersDomain);
    // A backfill asked for all its fire times: no overlap is weighed, the workflow's maxActiveRuns paces its runs.
    const active = earlier || fire.backfill ? [] : await activeRuns(schedule.id);
    if (earlier) {
      outcome = 'STARTED';
      runId = earlier.id;
    } else if ((message = await mayNotFire(schedule, workflow!, domain))) {
      outcome = 'FAILED';
    } else if (schedule.overlap === 'SKIP' && active.length) {
      outcome = 'SKIPPED_OVERLAP';
      message = `skipped: run ${active[0]!.id} of this schedule is still ${active[0]!.status} (overlap policy SKIP)`;
    } else {
      const cancelled = schedule.overlap === 'CANCEL_PREVIOUS' ? await cancelPrevious(orchestrator, active) : [];
      try {
        const actingFor = await scheduleActor(db, schedule);
        const run = await audited(db, () =>
          orchestrator.startRun(
            {
              workflow: schedule.workflowId,
              parameters: schedule.fireTimeParameter
                ? { ...schedule.parameters, [schedule.fireTimeParameter]: fireTimeText(fire.fireTime, schedule.timeZone) }
                : schedule.parameters,
              trigger: 'SCHEDULE',
              idempotencyKey: key,
              domain,
              actingFor,
              priority: schedule.priority,
            },
            null,
          ),
        );
        outcome = 'STARTED';
        runId = run.id;
        if (cancelled.length) message = `cancelled the previous run${cancelled.length > 1 ? 's' : ''} ${cancelled.join(', ')} (overlap policy CANCEL_PREVIOUS)`;
      } catch (error) {
        // A typed error is the workflow's or the input's fault and will not heal by retrying; anything else might.
        const late = now.getTime() - (fire.backfill ? fire.createdAt : fire.fireTime).getTime() > retryWindowMs;
        if (!(error instanceof AtelierError) && !late) {
          log(`schedule ${schedule.name} (${schedule.id}): starting the run of ${fire.fireTime.toISOString()} failed, will retry: ${(error as Error).message}`);
          return;
        }
        outcome = 'FAILED';
        message = `the run could not start: ${(error as Error).message}`;
      }
    }
    await db
      .update(scheduleFires)
      .set({ outcome, runId, message })
      .where(and(eq(scheduleFires.id, fire.id), eq(scheduleFires.outcome, 'PENDING')));
  }

  // --- ticking -------------------------------------------------------------------------------------------

  /**
   * A watermark later than the clock was set by a clock that read later than this one (it has stepped back since, or
   * was ahead when the schedule was made, changed or resumed): the fire times from now up to it would pass unseen, a
   * silent skip. It is brought back to now. A fire time recorded before is neither recorded nor run again when the
   * clock reaches it once more (its unique fire row, its run's idempotency key).
   */
  async function rewindWatermarks(now: Date): Promise<void> {
    const ahead = await db
      .select()
      .from(schedules)
      .where(and(eq(schedules.paused, false), gt(schedules.lastFireTime, now)))
      .limit(BATCH);
    for (const schedule of ahead) {
      await db
        .update(schedules)
        .set({ lastFireTime: now, nextFireTime: nextFireTime(timingOf(schedule), now) })
        .where(and(eq(schedules.id, schedule.id), gt(schedules.lastFireTime, now)));
    }
  }

  async function work(): Promise<void> {
    const now = clock.now();
    await rewindWatermarks(now);
    const due = await db
      .select({ id: schedules.id })
      .from(schedules)
      .where(and(eq(schedules.paused, false), lte(schedules.nextFireTime, now)))
      .orderBy(asc(schedules.nextFireTime))
      .limit(BATCH);
    for (const { id } of due) {
      await claim(id, now).catch((error) => log(`schedule ${id}: claiming due fire times failed: ${(error as Error).message}`));
    }
    // Oldest first, so a catch-up's runs start in order; this also finishes fires claimed before a crash. A backfill's
    // fires come after the on-time ones, a few each tick, so a backfill of a thousand days delays no schedule's fire.
    for (const [backfill, limit] of [
      [false, BATCH],
      [true, BACKFILL_PER_TICK],
    ] as const) {
      const pending = await db
        .select({ fire: scheduleFires, schedule: schedules })
        .from(scheduleFires)
        .innerJoin(schedules, eq(schedules.id, scheduleFires.scheduleId))
        .where(and(eq(scheduleFires.outcome, 'PENDING'), eq(scheduleFires.backfill, backfill)))
        .orderBy(asc(scheduleFires.fireTime), asc(scheduleFires.scheduleId))
        .limit(limit);
      for (const { fire, schedule } of pending) {
        await startFire(fire, schedule, now).catch((error) => log(`schedule ${schedule.name} (${schedule.id}): ${(error as Error).message} (will retry)`));
      }
    }
  }

  async function tick(): Promise<void> {
    if (leaderLock) await withTryAdvisoryLock(db, LEADER_LOCK, work);
    else await work();
  }

  let timer: NodeJS.Timeout | undefined;
  let ticking: Promise<void> | undefined;
  return {
    start() {
      if (timer) return;
      timer = setInterval(() => {
        if (ticking) return;
        ticking = tick()
          .catch((error) => log(`scheduler tick: ${(error as Error).message} (will retry)`))
          .finally(() => (ticking = undefined));
      }, options.tickMs ?? 1000);
      timer.unref();
    },
    async stop() {
      clearInterval(timer);
      timer = undefined;
      await ticking;
    },
    tick,
  };
}

function formatDelay(ms: number): string {
  if (ms < 60_000) return `${Math.round(ms / 1000)} s`;
  if (ms < 3_600_000) return `${Math.round(ms / 60_000)} min`;
  if (ms < 86_400_000) return `${(ms / 3_600_000).toFixed(1).replace(/\.0$/, '')} h`;
  return `${(ms / 86_400_000).toFixed(1).replace(/\.0$/, '')} days`;
}
