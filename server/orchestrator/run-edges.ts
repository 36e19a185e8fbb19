// Which nodes wait on each task of a run, by task: the recorder's read of a result's task then finds the task's
// PENDING children by their keys (tasks_run_node_key), not by checking `depends_on` on every PENDING task of its run
// (recorded-tasks.ts). Only ever a shortcut: a task it does not know takes that scan, as before.
//
// Noted by createRun for the runs this process starts, and read from the run's tasks (`learn`, once, after a commit)
// for a run it did not start (another replica, or this one before a restart) whose edge it recorded by the scan.
//
// Exact because a run's PENDING tasks are all written by the transaction that starts it (start.ts createRun), with the
// `depends_on` they keep: nothing sets a task PENDING later or changes its `depends_on` or its `node`. So the keys a
// task was given are a superset of its PENDING children at any later time, and the read checks their status and
// `depends_on` itself. A learnt run reads those same rows (its tasks but a map's items, which are written later, READY,
// and never wait): one statement sees all of that one transaction's rows or none (a run not there yet is not kept),
// and it runs after a result of the run was recorded, so after the start committed. Nothing it reads ever changes,
// so an entry never goes stale; one over the allowance is kept as knowing nothing (the scan), never in part. The tasks
// written after the start (a map's items) are not known here, so theirs take the scan.
import { and, eq, isNull } from 'drizzle-orm';
import type { Db } from '../db/client';
import { tasks } from '../db/tables/runs';
import { DOWNSTREAM_READ } from './recorded-tasks';

/** What a run's start wrote of a task. */
interface PlannedTask {
  id: string;
  node: string;
  dependsOn?: readonly string[] | null;
  status?: string;
}

/** Reads what the start of run `runId` wrote of its tasks, at most `limit` of them. */
export type PlanReader = (runId: string, limit: number) => Promise<PlannedTask[]>;

/** The run's tasks but a map's items, on tasks_run_node_key (run_id first): what its start wrote. */
export const readPlan =
  (db: Db): PlanReader =>
  (runId, limit) =>
    db
      .select({ id: tasks.id, node: tasks.node, dependsOn: tasks.dependsOn })
      .from(tasks)
      .where(and(eq(tasks.runId, runId), isNull(tasks.mapParent)))
      .limit(limit);

/** How many tasks the runs held here may have in all (each ~100 bytes): the oldest runs are let go past it. */
const MAX_TASKS = 100_000;

const NONE: readonly string[] = Object.freeze([]);

/** A run's tasks' downstream node keys, by task (null: more than the read returns whole); empty: knows nothing. */
type Edges = Map<string, readonly string[] | null>;

/** What a run held here counts against the allowance: a run kept as knowing nothing counts one. */
const weight = (edges: Edges) => Math.max(1, edges.size);

export class RunEdges {
  private readonly runs = new Map<string, Edges>();
  /** The runs whose tasks are being read (`learn`): let go (`ended`, `planned`) before the answer, it is dropped. */
  private readonly learning = new Map<string, Promise<void>>();
  private size = 0;

  constructor(
    private readonly maxTasks = MAX_TASKS,
    private readonly read?: PlanReader,
  ) {}

  /**
   * Notes the tasks a run's start writes (all of them, whatever their status): called by createRun. A run with no
   * PENDING task is not kept (nothing waits: the scan finds nothing at once); one larger than the whole allowance is
   * kept as knowing nothing, so that its edges do not read it again (`learn`).
   */
  planned(runId: string, tasks: readonly PlannedTask[]): void {
    this.ended(runId);
    if (tasks.some((t) => t.status === 'PENDING')) this.keep(runId, tasks);
  }

  /**
   * Reads the run's edges from its tasks, once, where nothing is held for it: called after a commit that recorded an
   * edge of the run by the scan (nothing waits for the answer; edges recorded meanwhile scan, as before). A read that
   * fails leaves the run unknown, to be tried at a later edge.
   */
  learn(runId: string): void {
    if (!this.read || this.runs.has(runId) || this.learning.has(runId)) return;
    const reading = this.read(runId, this.maxTasks + 1).then(
      (tasks) => {
        if (this.learning.get(runId) === reading && !this.runs.has(runId) && tasks.length) this.keep(runId, tasks);
      },
      () => undefined,
    );
    this.learning.set(runId, reading);
    void reading.finally(() => {
      if (this.learning.get(runId) === reading) this.learning.delete(runId);
    });
  }

  /** Settles when the run's read (`learn`) under way, if any, has been answered and kept or dropped. */
  async learnt(runId: string): Promise<void> {
    await this.learning.get(runId);
  }

  /**
   * The node keys of the tasks of run `runId` that wait on task `taskId` (none for a leaf); undefined where that is
   * not known here, or they are more than the recorder's read returns whole: the read then scans, as before.
   */
  downstreamOf(runId: string, taskId: string): readonly string[] | undefined {
    return this.runs.get(runId)?.get(taskId) ?? undefined;
  }

  /** Whether anything is held for run `runId` (a run its start wrote with a task waiting, or learnt). */
  holds(runId: string): boolean {
    return this.runs.has(runId);
  }

  /** Lets a run go (its end; a start written again after a rolled-back try); a read of it under way is dropped. */
  ended(runId: string): void {
    this.learning.delete(runId);
    const held = this.runs.get(runId);
    if (!held) return;
    this.runs.delete(runId);
    this.size -= weight(held);
  }

  private keep(runId: string, tasks: readonly PlannedTask[]): void {
    const edges = tasks.length > this.maxTasks ? new Map() : edgesOf(tasks);
    this.runs.set(runId, edges);
    this.size += weight(edges);
    for (const [oldest, held] of this.runs) {
      if (this.size <= this.maxTasks) break;
      this.runs.delete(oldest);
      this.size -= weight(held);
    }
  }
}

/** Each task's downstream node keys, in node order; tasks with the same children share one array (a wide join's upstreams). */
function edgesOf(tasks: readonly PlannedTask[]): Edges {
  const below = new Map<string, string[]>();
  for (const t of tasks)
    for (const up of t.dependsOn ?? []) {
      const nodes = below.get(up);
      if (nodes) nodes.push(t.node);
      else below.set(up, [t.node]);
    }
  const shared = new Map<string, readonly string[]>();
  const byTask: Edges = new Map();
  for (const t of tasks) {
    const nodes = [...new Set(below.get(t.node) ?? [])].sort();
    if (nodes.length > DOWNSTREAM_READ) byTask.set(t.id, null);
    else if (!nodes.length) byTask.set(t.id, NONE);
    else {
      const key = nodes.join('\n');
      if (!shared.has(key)) shared.set(key, nodes);
      byTask.set(t.id, shared.get(key)!);
    }
  }
  return byTask;
}
