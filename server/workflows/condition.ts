// A task's `when`: a CEL expression (https://cel.dev, the language of Kubernetes' admission policies and Argo's
// expressions; non-Turing-complete, no side effects) over the run's parameters and the outputs and statuses of the
// task's direct upstreams, decided when the task is about to be dispatched. False: the task is SKIPPED (reason
// `condition-false`) and its downstream decided by their trigger rules, as after any skip. An error (a key that is
// not there, a value that is not true or false): the task FAILS (reason `condition-invalid`), saying why.
//
// Checked when the spec is stored: it parses, it type-checks, and every node and parameter it names is one the task
// may read (a direct upstream; a declared parameter), so a typo is refused then, not found in a run hours later.
// Evaluated in the control plane: on the event loop when it cannot take long (no comprehension or regular
// expression, a small context), else on a thread of its own with a deadline and a memory bound, so no condition,
// however written and whatever the outputs it reads, holds the control plane up (server/threads/deadline-thread.ts).
import type { ASTNode } from '@marcbachmann/cel-js';
import type { ErrorDetail } from '../errors';
import { closestName } from '../errors/did-you-mean';
import { DeadlineThread, type ThreadCallError } from '../threads/deadline-thread';
import type { TaskSpec } from '../vocabulary';
import { conditionEnvironment, evaluateHere, firstLine } from './condition-env.mjs';

/** Most characters a condition may have. */
export const MAX_CONDITION_CHARS = 1000;
/** How long a condition may take on its thread, and the most memory the thread may use. */
export const CONDITION_DEADLINE_MS = 2000;
const CONDITION_HEAP_MB = 64;
/** A context up to this much JSON is evaluated on the event loop when the condition has no loop or regex in it. */
const INLINE_CONTEXT_CHARS = 16 * 1024;

/** Functions whose cost grows faster than what they read: evaluated on the thread only. */
const costly = new Set(['all', 'exists', 'exists_one', 'map', 'filter', 'matches']);
const roots = { outputs: 'outputs', status: 'status', params: 'params' } as const;

export type ConditionContext = {
  params: Record<string, unknown>;
  outputs: Record<string, Record<string, unknown>>;
  status: Record<string, string>;
};

/** Where in the condition an error points: ` (at character N)`. */
const at = (error: { range?: { start: number } }) => (error.range ? ` (at character ${error.range.start + 1})` : '');

/** What a spec's condition may name: its problems, each a detail at `tasks.NODE.when`. */
export function conditionProblems(task: TaskSpec & { when: string }, declaredParameters: Record<string, unknown>): ErrorDetail[] {
  const path = `tasks.${task.name}.when`;
  const checked = conditionEnvironment.check(task.when);
  if (!checked.valid) {
    const error = checked.error!;
    return [{ path, message: `is not a valid CEL condition: ${error.summary ?? firstLine(error)}${at(error)}` }];
  }
  const problems: ErrorDetail[] = [];
  if (checked.type !== 'bool' && checked.type !== 'dyn')
    problems.push({
      path,
      message: `is ${/^[aeiou]/.test(checked.type!) ? 'an' : 'a'} ${checked.type}, not true or false; compare it, e.g. "outputs.evaluate.accuracy >= 0.9"`,
    });
  const upstream = task.dependsOn ?? [];
  for (const ref of references(conditionEnvironment.parse(task.when).ast)) {
    if (ref.root === 'params') {
      if (!Object.hasOwn(declaredParameters, ref.name))
        problems.push({
          path,
          message: `reads params.${ref.name}, but the workflow declares no run parameter "${ref.name}"${hint(ref.name, Object.keys(declaredParameters))}`,
        });
    } else if (!upstream.includes(ref.name)) {
      problems.push({
        path,
        message: `reads ${ref.root}.${ref.name}, but "${ref.name}" is not in this task's dependsOn; a condition reads only its direct upstreams${hint(ref.name, upstream)}`,
      });
    }
  }
  return problems;
}

const hint = (name: string, among: string[]) => {
  const near = closestName(name, among);
  return near ? ` (did you mean "${near}"?)` : '';
};

/** The nodes and parameters a condition names: `outputs.N…`, `status.N`, `params.P`, or the same with `["N"]`. */
function references(ast: ASTNode): { root: keyof typeof roots; name: string }[] {
  const found: { root: keyof typeof roots; name: string }[] = [];
  const visit = (node: unknown): void => {
    if (Array.isArray(node)) {
      for (const item of node) visit(item);
      return;
    }
    if (!node || typeof node !== 'object' || !('op' in node)) return;
    const { op, args } = node as { op: string; args: unknown };
    if ((op === '.' || op === '[]') && Array.isArray(args)) {
      const [target, key] = args as [{ op?: string; args?: unknown }, unknown];
      const name = op === '.' ? key : (key as { op?: string; args?: unknown })?.op === 'value' ? (key as { args: unknown }).args : undefined;
      if (target?.op === 'id' && typeof target.args === 'string' && Object.hasOwn(roots, target.args) && typeof name === 'string')
        found.push({ root: target.args as keyof typeof roots, name });
    }
    visit(args);
  };
  visit(ast);
  return found;
}

/** Whether a condition calls something whose cost is not bounded by what it reads. */
function hasCostlyCall(ast: ASTNode): boolean {
  const visit = (node: unknown): boolean => {
    if (Array.isArray(node)) return node.some(visit);
    if (!node || typeof node !== 'object' || !('op' in node)) return false;
    const { op, args } = node as { op: string; args: unknown };
    if ((op === 'rcall' || op === 'call') && Array.isArray(args) && costly.has(args[0] as string)) return true;
    return visit(args);
  };
  return visit(ast);
}

const thread = new DeadlineThread(new URL('./condition-worker.mjs', import.meta.url), 'evaluating the condition', {
  maxOldGenerationSizeMb: CONDITION_HEAP_MB,
  maxYoungGenerationSizeMb: 16,
});

/** Decides a stored condition over a task's context: `{ value }`, or `{ error }` saying why it could not be decided. */
export async function evaluateCondition(text: string, context: ConditionContext): Promise<{ value: boolean } | { error: string }> {
  let ast: ASTNode;
  try {
    ast = conditionEnvironment.parse(text).ast;
  } catch (error) {
    return { error: firstLine(error) }; // stored before a check existed, or by a newer version
  }
  if (!hasCostlyCall(ast) && JSON.stringify(context).length <= INLINE_CONTEXT_CHARS) return evaluateHere(text, context);
  try {
    return (await thread.call({ text, context }, CONDITION_DEADLINE_MS)) as { value: boolean } | { error: string };
  } catch (error) {
    const e = error as ThreadCallError;
    return {
      error: e.timedOut
        ? `it took longer than ${CONDITION_DEADLINE_MS / 1000} s to evaluate; a condition should compare a few values, not loop over large outputs`
        : `its evaluation stopped (${e.message}); it may have built values larger than ${CONDITION_HEAP_MB} MiB`,
    };
  }
}
