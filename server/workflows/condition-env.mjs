// The CEL environment a task's `when` condition is parsed, checked and evaluated in (server/workflows/condition.ts),
// shared by the control plane and its condition thread (condition-worker.mjs). Plain JavaScript so that it loads the
// same under tsx, vitest and plain node. Three maps and nothing else: the run's parameters, and the outputs and
// statuses of the task's direct upstreams.
import { Environment } from '@marcbachmann/cel-js';

export const conditionEnvironment = new Environment({ limits: { maxAstNodes: 200, maxDepth: 32, maxListElements: 100, maxMapEntries: 100 } })
  .registerVariable('params', 'map', { description: "the run's parameters" })
  .registerVariable('outputs', 'map', { description: "the outputs of the task's direct upstreams, by node" })
  .registerVariable('status', 'map', { description: "the statuses of the task's direct upstreams, by node" });

/** Evaluates a condition here and now: `{ value }` when it is true or false, else `{ error }` saying what it was. */
export function evaluateHere(text, context) {
  try {
    const value = conditionEnvironment.evaluate(text, context);
    if (typeof value === 'boolean') return { value };
    return { error: `it evaluated to ${describe(value)}, not to true or false` };
  } catch (error) {
    return { error: firstLine(error) };
  }
}

/** An error's message without the source drawing under it (the condition is shown beside it). */
export function firstLine(error) {
  return String(error?.message ?? error).split('\n')[0];
}

function describe(value) {
  let text;
  try {
    text = typeof value === 'bigint' ? String(value) : JSON.stringify(value);
  } catch {
    text = undefined;
  }
  text ??= String(value);
  return text.length > 80 ? `${text.slice(0, 80)}…` : text;
}
