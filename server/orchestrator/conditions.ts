// The `when` gate: before a READY task is dispatched (or its nested run started, or its map expanded), its condition
// is decided over the run's parameters and its direct upstreams' outputs and statuses (workflows/condition.ts).
// False: SKIPPED, reason `condition-false`. Not decidable: FAILED, reason `condition-invalid`, saying why. Either
// way the node is handed back as ended, so its downstream is decided by their trigger rules. A task retried after
// an attempt was dispatched already (its condition held then, and what it reads has not changed) is not asked again.
import { and, eq, inArray } from 'drizzle-orm';
import { permanentFailure } from '../../plugins/outcomes';
import { type Run, type Task, tasks } from '../db/tables/runs';
import { type ConditionContext, evaluateCondition } from '../workflows/condition';
import { type TxContext, taskStatusEvent } from './context';
import { isTerminal } from './rules';
import { applyOutcome } from './settle';

/** Decides the conditions of `ready`'s tasks that have one; returns the tasks that go on, and pushes the others' nodes to `ended`. */
export async function decideConditions(tc: TxContext, run: Run, ready: Task[], ended: string[]): Promise<Task[]> {
  const asked = ready.filter((t) => t.condition && t.attempt === 0);
  if (!asked.length) return ready;
  const { tx, step } = tc;
  const upstream = [...new Set(asked.flatMap((t) => t.dependsOn))];
  const rows = upstream.length
    ? await tx
        .select({ node: tasks.node, status: tasks.status, outputs: tasks.outputs })
        .from(tasks)
        .where(and(eq(tasks.runId, run.id), inArray(tasks.node, upstream)))
    : [];
  const byNode = new Map(rows.map((r) => [r.node, r]));
  const stopped = new Set<string>();
  for (const task of asked) {
    const context: ConditionContext = { params: run.parameters, outputs: {}, status: {} };
    for (const node of task.dependsOn) {
      context.outputs[node] = byNode.get(node)?.outputs ?? {};
      context.status[node] = byNode.get(node)?.status ?? 'PENDING';
    }
    const decided = await evaluateCondition(task.condition!, context);
    if ('value' in decided && decided.value) continue;
    stopped.add(task.id);
    if ('value' in decided) {
      const message = `skipped: its condition was false (when: ${task.condition})`;
      await tx.update(tasks).set({ status: 'SKIPPED', reason: 'condition-false', message, finishedAt: step.at }).where(eq(tasks.id, task.id));
      taskStatusEvent(step, task, 'SKIPPED', 'condition-false', message);
      ended.push(task.node);
    } else {
      const message = `its condition could not be decided: ${decided.error} (when: ${task.condition}); a value an upstream may not output can be guarded with has(), e.g. has(outputs.evaluate.accuracy) && outputs.evaluate.accuracy >= 0.9`;
      const updated = await applyOutcome(tc, task, permanentFailure('condition-invalid', message), { at: step.at, durationMs: 0, host: null });
      if (isTerminal(updated.status)) ended.push(task.node);
    }
  }
  return ready.filter((t) => !stopped.has(t.id));
}
