// The no-op executor, counting: every execution a host starts, by `taskId:attempt`, with the message it ran. The
// exactly-once tests assert on it that a task ran once however the control plane and the bus failed around it.
import { createNoopExecutor } from '../../executors/noop';
import type { TaskMessage } from '../../plugins/protocol';
import type { Executor } from '../../plugins/sdk';

export function countingNoopExecutor() {
  const executions = new Map<string, TaskMessage[]>();
  const inner = createNoopExecutor();
  const executor: Executor = {
    ...inner,
    async submit(task, ctx) {
      const key = `${task.taskId}:${task.attempt}`;
      executions.set(key, [...(executions.get(key) ?? []), task]);
      return inner.submit(task, ctx);
    },
  };
  /** Every execution of the task, all attempts, in the order they started. */
  const executionsOf = (taskId: string) => [...executions.entries()].filter(([k]) => k.startsWith(`${taskId}:`)).flatMap(([, v]) => v);
  return { executor, executions, executionsOf };
}
