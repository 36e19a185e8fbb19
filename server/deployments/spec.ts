// What a deployment is made of, checked before anything is written: its name, what it serves (`ns/model@alias`
// follows an alias, `ns/model/3` pins a version), the rollout policy (steps, gates, ready timeout) and the fallback;
// and how a model version says it is served (`metadata.serve`, see docs/deployments.md).
import { type NoDataPolicy, noDataPolicies, type RolloutGate, type RolloutPolicy } from '../db/tables/deployments';
import { badInput } from '../errors';
import { checkRules, METRIC_NAME_RULE, metricNameRe, type RuleInput } from '../monitoring/rules';
import { DEFAULT_HOLD_TIMEOUT_S } from './rollout';

const nameRe = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;

export function checkDeploymentName(name: string): void {
  if (!nameRe.test(name))
    throw badInput(`"${name}" is not a deployment name: use 1–63 lowercase letters, digits and dashes, starting and ending with a letter or digit.`);
}

/** `ns/model@alias`, or `ns/model/3` (also `ns/model@3`, as the registry writes a version: no alias is a number). */
export type ModelTarget = { model: string; alias: string; version: null } | { model: string; alias: null; version: number };

export function parseModelTarget(ref: string): ModelTarget {
  const alias = /^([^/@\s]+\/[^/@\s]+)@([A-Za-z][A-Za-z0-9._-]{0,63})$/.exec(ref);
  if (alias) return { model: alias[1]!, alias: alias[2]!, version: null };
  const pinned = /^([^/@\s]+\/[^/@\s]+)[/@](\d{1,9})$/.exec(ref);
  if (pinned) return { model: pinned[1]!, alias: null, version: Number(pinned[2]) };
  throw badInput(`"${ref}" names no model version: use ns/model@alias to follow an alias, or ns/model/3 to pin version 3.`);
}

export interface PolicyInput {
  steps?: { percent: number; dwellSeconds?: number | null }[] | null;
  gates?: { metric: string; rule: RuleInput }[] | null;
  readyTimeoutSeconds?: number | null;
  noData?: NoDataPolicy | null;
  holdTimeoutSeconds?: number | null;
}

export const DEFAULT_READY_TIMEOUT_S = 300;

/** Steps strictly growing, whole percents 1..100; gates are THRESHOLD or REGRESSION rules on a metric. */
export function checkPolicy(input: PolicyInput | null | undefined): RolloutPolicy {
  const steps = (input?.steps ?? []).map((s, i) => {
    if (!Number.isInteger(s.percent) || s.percent < 1 || s.percent > 100) throw badInput(`rollout.steps.${i}.percent must be a whole number from 1 to 100.`);
    const dwellSeconds = s.dwellSeconds ?? 60;
    if (!Number.isInteger(dwellSeconds) || dwellSeconds < 0 || dwellSeconds > 7 * 86_400)
      throw badInput(`rollout.steps.${i}.dwellSeconds must be a whole number of seconds from 0 to ${7 * 86_400}.`);
    return { percent: s.percent, dwellSeconds };
  });
  if (steps.length > 20) throw badInput('A rollout has at most 20 steps.');
  steps.forEach((s, i) => {
    if (i > 0 && s.percent <= steps[i - 1]!.percent)
      throw badInput(`rollout.steps.${i}.percent (${s.percent}) must be above the step before (${steps[i - 1]!.percent}).`);
  });
  if (steps.length && steps[steps.length - 1]!.percent !== 100) throw badInput('The last rollout step must be 100 (all traffic on the new revision).');
  const gateInputs = input?.gates ?? [];
  if (gateInputs.length && !steps.length) throw badInput('Gates are checked after each step’s dwell: give the rollout steps (e.g. 10, 50, 100) to use gates.');
  const rules = gateInputs.length ? checkRules(gateInputs.map((g) => g.rule)) : [];
  const gates: RolloutGate[] = rules.map((rule, i) => {
    const metric = gateInputs[i]!.metric;
    if (typeof metric !== 'string' || !metricNameRe.test(metric))
      throw badInput(`rollout.gates.${i}.metric must name a metric as observations do: ${METRIC_NAME_RULE}, e.g. serving.error_rate.`);
    if (rule.kind === 'DRIFT') throw badInput(`rollout.gates.${i}: DRIFT rules compare datasets, not a revision's traffic; use THRESHOLD or REGRESSION.`);
    return { metric, rule: rule as unknown as RolloutGate['rule'] };
  });
  const readyTimeoutSeconds = input?.readyTimeoutSeconds ?? DEFAULT_READY_TIMEOUT_S;
  if (!Number.isInteger(readyTimeoutSeconds) || readyTimeoutSeconds < 1 || readyTimeoutSeconds > 86_400)
    throw badInput('rollout.readyTimeoutSeconds must be a whole number of seconds from 1 to 86400.');
  const noData = input?.noData ?? 'HOLD';
  if (!noDataPolicies.includes(noData)) throw badInput(`rollout.noData must be one of ${noDataPolicies.join(', ')}.`);
  const holdTimeoutSeconds = input?.holdTimeoutSeconds ?? DEFAULT_HOLD_TIMEOUT_S;
  if (!Number.isInteger(holdTimeoutSeconds) || holdTimeoutSeconds < 1 || holdTimeoutSeconds > 7 * 86_400)
    throw badInput(`rollout.holdTimeoutSeconds must be a whole number of seconds from 1 to ${7 * 86_400}.`);
  return { steps, gates, readyTimeoutSeconds, noData, holdTimeoutSeconds };
}

/** The serve entrypoint a model version declares in `metadata.serve`, or null (its revisions then FAIL). */
export function serveOf(metadata: Record<string, unknown>): { command: string[]; healthPath?: string | null } | null {
  const serve = metadata.serve as { command?: unknown; healthPath?: unknown } | undefined;
  if (!serve || typeof serve !== 'object') return null;
  const command = serve.command;
  if (!Array.isArray(command) || !command.length || command.some((c) => typeof c !== 'string' || !c)) return null;
  const healthPath = serve.healthPath;
  return { command: command as string[], ...(typeof healthPath === 'string' || healthPath === null ? { healthPath } : {}) };
}
