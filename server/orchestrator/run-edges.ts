// Which nodes wait on each task of the runs this process started, by task: the recorder's read of a result's task then
// finds the task's PENDING children by their keys (tasks_run_node_key), not by checking `depends_on` on every PENDING
// task of its run (recorded-tasks.ts). Only ever a shortcut: a task it does not know takes that scan, as before.
//
// Exact because a run's PENDING tasks are all written by the transaction that starts it (start.ts createRun), with the
// `depends_on` they keep: nothing sets a task PENDING later or changes its `depends_on`. The tasks written afterwards
// (a map's items, READY from the start) are not known here, so theirs take the scan; a run started by another process
// (another replica, or this one before a restart) is not known at all.
import { DOWNSTREAM_READ } from './recorded-tasks';

/** What a run's start wrote of a task. */
interface PlannedTask {
  id: string;
  node: string;
  dependsOn?: readonly string[];
  status?: string;
}

/** How many tasks the runs held here may have in all (each ~100 bytes): the oldest runs are let go past it. */
const MAX_TASKS = 100_000;

const NONE: readonly string[] = Object.freeze([]);

export class RunEdges {
  /** By run: each task's downstream node keys, in node order (null: more than the read returns whole). */
  private readonly runs = new Map<string, Map<string, readonly string[] | null>>();
  private size = 0;

  constructor(private readonly maxTasks = MAX_TASKS) {}

  /**
   * Notes the tasks a run's start writes (all of them, whatever their status): called by createRun. A run with no
   * PENDING task is not kept (nothing waits: the scan finds nothing at once), nor one larger than the whole allowance.
   */
  planned(runId: string, tasks: readonly PlannedTask[]): void {
    this.ended(runId);
    if (!tasks.some((t) => t.status === 'PENDING') || tasks.length > this.maxTasks) return;
    const below = new Map<string, string[]>();
    for (const t of tasks)
      for (const up of t.dependsOn ?? []) {
        const nodes = below.get(up);
        if (nodes) nodes.push(t.node);
        else below.set(up, [t.node]);
      }
    // Tasks with the same children share one array: a wide join's upstreams hold one between them.
    const shared = new Map<string, readonly string[]>();
    const byTask = new Map<string, readonly string[] | null>();
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
    this.runs.set(runId, byTask);
    this.size += byTask.size;
    for (const [oldest, tasks] of this.runs) {
      if (this.size <= this.maxTasks) break;
      this.runs.delete(oldest);
      this.size -= tasks.size;
    }
  }

  /**
   * The node keys of the tasks of run `runId` that wait on task `taskId` (none for a leaf); undefined where that is
   * not known here, or they are more than the recorder's read returns whole: the read then scans, as before.
   */
  downstreamOf(runId: string, taskId: string): readonly string[] | undefined {
    return this.runs.get(runId)?.get(taskId) ?? undefined;
  }

  /** Lets a run go (its end; a start written again after a rolled-back try). */
  ended(runId: string): void {
    const held = this.runs.get(runId);
    if (!held) return;
    this.runs.delete(runId);
    this.size -= held.size;
  }
}
