// A monitor's rules and their evaluation, as pure code: what each kind of rule needs measured (`needs`), and what
// a measurement makes of the rule's state (`evaluateRule`). The kinds are a union keyed by `kind`, each with its
// checker and its evaluator in `ruleKinds`, so a new kind (DRIFT) is one more member and one more entry.
import { badInput } from '../errors';

/** A metric's name wherever one is named: an observation, a monitor, a rollout's gate (so each names one that can exist). */
export const metricNameRe = /^[A-Za-z0-9_][A-Za-z0-9_.:/-]{0,127}$/;
export const METRIC_NAME_RULE = '1–128 letters, digits, "_", ".", ":", "/" or "-" (not starting with one of the last four)';

export const aggregates = ['MEAN', 'MIN', 'MAX', 'LAST', 'COUNT'] as const;
export type Aggregate = (typeof aggregates)[number];

interface RuleBase {
  /** Stable within its monitor: alerts and state are keyed by it. */
  id: string;
  /** Breaches in a row before an alert opens (1: the first). */
  consecutive: number;
  /** The window measured, ending at the evaluation. */
  windowSeconds: number;
  aggregate: Aggregate;
}

/** Breached when the window's aggregate is above `above` or below `below`. */
export interface ThresholdRule extends RuleBase {
  kind: 'THRESHOLD';
  above: number | null;
  below: number | null;
}

/**
 * Breached when the window's aggregate is worse than the baseline by more than `maxDrop` (relative: 0.05 = 5 %).
 * The baseline: the model version's evaluation metric (`EVALUATION`), or the same aggregate over the trailing
 * `trailingSeconds` before the window, leaving out annotated windows (`TRAILING`); a person's re-baseline wins.
 */
export interface RegressionRule extends RuleBase {
  kind: 'REGRESSION';
  baseline: 'EVALUATION' | 'TRAILING';
  /** EVALUATION: which evaluation metric (default: the monitor's metric). */
  evaluationMetric: string | null;
  trailingSeconds: number | null;
  maxDrop: number;
  higherIsBetter: boolean;
}

/** Per-statistic drift thresholds (server/monitoring/drift.ts `breachesOf`; null: its default, or not watched). */
export interface DriftLimits {
  psi: number | null;
  ks: number | null;
  chiSquarePValue: number | null;
  jensenShannon: number | null;
}

/**
 * Breached when any watched column's drift crosses a threshold: a DATASET target's newest version against
 * `baselineVersion` (default: the version before the newest), or, for a model version or alias, the newest
 * version of `dataset` against the version its lineage says it was trained on. Computed over stored profiles, as
 * the monitor's creator (within its owning team's grants): a column they may not read is never compared.
 */
export interface DriftRule extends RuleBase {
  kind: 'DRIFT';
  /** MODEL_VERSION/ALIAS: which dataset of the lineage (default: the only one it read). */
  dataset: string | null;
  /** DATASET: the baseline version (default: the one before the newest). */
  baselineVersion: number | null;
  /** Only these columns (default: every column both profiles have and the owner may read). */
  columns: string[] | null;
  thresholds: DriftLimits;
}

export type MonitorRule = ThresholdRule | RegressionRule | DriftRule;
export type RuleKind = MonitorRule['kind'];

/** Kept per rule between evaluations. */
export interface RuleState {
  consecutive: number;
  lastValue: number | null;
  lastBaseline: number | null;
  /** Set by a person's re-baseline: the baseline from then on. */
  baseline: { value: number; at: string } | null;
}

export const emptyState = (): RuleState => ({ consecutive: 0, lastValue: null, lastBaseline: null, baseline: null });

/** What an evaluation measured for a rule. `current`: the window's aggregate (null: no observations in it). */
export interface Measured {
  current: number | null;
  /** The baseline the rule's source gave (null: none, e.g. no trailing observations). */
  baseline: number | null;
  /** DRIFT: the versions compared and each breaching column's crossed thresholds (`current` counts them). */
  drift?: DriftMeasured;
}

export interface DriftMeasured {
  dataset: string;
  version: number;
  baselineVersion: number;
  columns: { column: string; breaches: string[] }[];
}

export type Verdict =
  | { status: 'NO_DATA'; state: RuleState }
  | { status: 'OK'; state: RuleState; value: number }
  | { status: 'BREACH'; state: RuleState; value: number; bound: number; message: string; alert: boolean };

const MAX_WINDOW = 90 * 86_400;
const finite = (n: unknown): n is number => typeof n === 'number' && Number.isFinite(n);
const idRe = /^[A-Za-z0-9_-]{1,40}$/;

/** What a rule's input may carry (GraphQL `MonitorRuleInput`, JSON bodies). */
export interface RuleInput {
  id?: string | null;
  kind: string;
  aggregate?: string | null;
  windowSeconds?: number | null;
  consecutive?: number | null;
  above?: number | null;
  below?: number | null;
  baseline?: string | null;
  evaluationMetric?: string | null;
  trailingSeconds?: number | null;
  maxDrop?: number | null;
  higherIsBetter?: boolean | null;
  dataset?: string | null;
  baselineVersion?: number | null;
  columns?: string[] | null;
  psi?: number | null;
  ks?: number | null;
  chiSquarePValue?: number | null;
  jensenShannon?: number | null;
}

interface RuleKindSpec<R extends MonitorRule> {
  check(input: RuleInput, base: RuleBase, path: string): R;
  /** The breached bound and the message, or null when the measurement is within the rule. */
  breach(rule: R, current: number, baseline: number | null, measured: Measured): { bound: number; message: string } | null;
}

const threshold: RuleKindSpec<ThresholdRule> = {
  check(input, base, path) {
    const above = input.above ?? null;
    const below = input.below ?? null;
    if (above === null && below === null) throw badInput(`${path}: a THRESHOLD rule needs above, below or both.`);
    for (const [name, v] of [
      ['above', above],
      ['below', below],
    ] as const)
      if (v !== null && !finite(v)) throw badInput(`${path}.${name} must be a finite number.`);
    if (above !== null && below !== null && below > above) throw badInput(`${path}: below (${below}) is above above (${above}); nothing could pass.`);
    return { ...base, kind: 'THRESHOLD', above, below };
  },
  breach(rule, current) {
    const name = rule.aggregate.toLowerCase();
    if (rule.above !== null && current > rule.above) return { bound: rule.above, message: `${name} ${current} is above ${rule.above}` };
    if (rule.below !== null && current < rule.below) return { bound: rule.below, message: `${name} ${current} is below ${rule.below}` };
    return null;
  },
};

const regression: RuleKindSpec<RegressionRule> = {
  check(input, base, path) {
    const baseline = input.baseline ?? 'TRAILING';
    if (baseline !== 'EVALUATION' && baseline !== 'TRAILING') throw badInput(`${path}.baseline must be EVALUATION or TRAILING.`);
    const maxDrop = input.maxDrop ?? null;
    if (!finite(maxDrop) || maxDrop <= 0 || maxDrop >= 10) throw badInput(`${path}.maxDrop must be a relative drop above 0 (0.05 = 5 %).`);
    const trailingSeconds = baseline === 'TRAILING' ? (input.trailingSeconds ?? base.windowSeconds * 24) : null;
    if (trailingSeconds !== null && (!Number.isInteger(trailingSeconds) || trailingSeconds < 60 || trailingSeconds > MAX_WINDOW))
      throw badInput(`${path}.trailingSeconds must be a whole number of seconds from 60 to ${MAX_WINDOW}.`);
    return {
      ...base,
      kind: 'REGRESSION',
      baseline,
      evaluationMetric: baseline === 'EVALUATION' ? (input.evaluationMetric ?? null) : null,
      trailingSeconds,
      maxDrop,
      higherIsBetter: input.higherIsBetter ?? true,
    };
  },
  breach(rule, current, baseline) {
    if (baseline === null || baseline === 0) return null;
    const drop = ((rule.higherIsBetter ? baseline - current : current - baseline) / Math.abs(baseline)) as number;
    if (drop <= rule.maxDrop) return null;
    const bound = rule.higherIsBetter ? baseline - rule.maxDrop * Math.abs(baseline) : baseline + rule.maxDrop * Math.abs(baseline);
    return {
      bound,
      message: `${rule.aggregate.toLowerCase()} ${current} is ${(drop * 100).toFixed(1)} % worse than the baseline ${baseline} (at most ${rule.maxDrop * 100} %)`,
    };
  },
};

const datasetRe = /^[A-Za-z0-9][A-Za-z0-9._-]*\/[A-Za-z0-9][A-Za-z0-9._-]*$/;

const drift: RuleKindSpec<DriftRule> = {
  check(input, base, path) {
    const thresholds: DriftLimits = {
      psi: input.psi ?? null,
      ks: input.ks ?? null,
      chiSquarePValue: input.chiSquarePValue ?? null,
      jensenShannon: input.jensenShannon ?? null,
    };
    for (const [name, v] of Object.entries(thresholds))
      if (v !== null && (!finite(v) || v <= 0 || (name !== 'psi' && v >= 1)))
        throw badInput(`${path}.${name} must be a number above 0${name === 'psi' ? '' : ' and below 1'}.`);
    const dataset = input.dataset ?? null;
    if (dataset !== null && !datasetRe.test(dataset)) throw badInput(`${path}.dataset must be a dataset name, namespace/name.`);
    const baselineVersion = input.baselineVersion ?? null;
    if (baselineVersion !== null && (!Number.isSafeInteger(baselineVersion) || baselineVersion < 1))
      throw badInput(`${path}.baselineVersion must be a version number (1, 2, …).`);
    const columns = input.columns ?? null;
    if (columns !== null && (!columns.length || columns.length > 500 || columns.some((c) => typeof c !== 'string' || !c || c.length > 200)))
      throw badInput(`${path}.columns lists 1–500 column names (leave it out to watch every column).`);
    return { ...base, kind: 'DRIFT', dataset, baselineVersion, columns: columns ? [...new Set(columns)] : null, thresholds };
  },
  breach(_rule, current, _baseline, measured) {
    if (current <= 0 || !measured.drift) return null;
    const d = measured.drift;
    const cols = d.columns.filter((c) => c.breaches.length);
    const named = cols.map((c) => `${c.column} (${c.breaches.join(', ')})`).join('; ');
    return {
      bound: 0,
      message: `drift in ${cols.length} column${cols.length === 1 ? '' : 's'} of ${d.dataset} v${d.version} against v${d.baselineVersion}: ${named}`,
    };
  },
};

/** Every kind of rule: add a kind here (and to `MonitorRule`). */
const ruleKinds: { [K in RuleKind]: RuleKindSpec<Extract<MonitorRule, { kind: K }>> } = { THRESHOLD: threshold, REGRESSION: regression, DRIFT: drift };
export const ruleKindNames = Object.keys(ruleKinds) as RuleKind[];

/** Checks and normalises a monitor's rules (ids given or numbered `r1`, `r2`…; unique). */
export function checkRules(inputs: readonly RuleInput[]): MonitorRule[] {
  if (!inputs.length) throw badInput('A monitor needs at least one rule.');
  if (inputs.length > 20) throw badInput(`A monitor has at most 20 rules (got ${inputs.length}); make another monitor.`);
  const rules = inputs.map((input, i) => {
    const path = `rules.${i}`;
    const id = input.id ?? `r${i + 1}`;
    if (!idRe.test(id)) throw badInput(`${path}.id "${id}" must be 1–40 letters, digits, "_" or "-".`);
    const aggregate = (input.aggregate ?? 'MEAN') as Aggregate;
    if (!aggregates.includes(aggregate)) throw badInput(`${path}.aggregate must be one of ${aggregates.join(', ')}.`);
    const windowSeconds = input.windowSeconds ?? 3600;
    if (!Number.isInteger(windowSeconds) || windowSeconds < 1 || windowSeconds > MAX_WINDOW)
      throw badInput(`${path}.windowSeconds must be a whole number of seconds from 1 to ${MAX_WINDOW}.`);
    const consecutive = input.consecutive ?? 1;
    if (!Number.isInteger(consecutive) || consecutive < 1 || consecutive > 1000) throw badInput(`${path}.consecutive must be a whole number from 1 to 1000.`);
    const spec = ruleKinds[input.kind as RuleKind] as RuleKindSpec<MonitorRule> | undefined;
    if (!spec) throw badInput(`${path}.kind must be one of ${ruleKindNames.join(', ')}.`);
    return spec.check(input, { id, aggregate, windowSeconds, consecutive }, path);
  });
  const ids = rules.map((r) => r.id);
  const twice = ids.find((id, i) => ids.indexOf(id) !== i);
  if (twice) throw badInput(`Rule id "${twice}" is used twice; give each rule its own id.`);
  return rules;
}

/**
 * One evaluation of one rule: a breach adds to the consecutive count (an alert is due once it reaches the rule's
 * `consecutive`), a pass resets it, and no observations in the window leaves it as it was. A person's re-baseline
 * (`state.baseline`) replaces the rule's own baseline.
 */
export function evaluateRule(rule: MonitorRule, measured: Measured, previous: RuleState | undefined): Verdict {
  const state = { ...(previous ?? emptyState()) };
  if (measured.current === null || !Number.isFinite(measured.current)) return { status: 'NO_DATA', state };
  const baseline = state.baseline ? state.baseline.value : measured.baseline;
  state.lastValue = measured.current;
  state.lastBaseline = baseline;
  const spec = ruleKinds[rule.kind] as RuleKindSpec<MonitorRule>;
  const breach = spec.breach(rule, measured.current, baseline, measured);
  if (!breach) return { status: 'OK', state: { ...state, consecutive: 0 }, value: measured.current };
  state.consecutive += 1;
  const alert = state.consecutive >= rule.consecutive;
  const times = rule.consecutive > 1 ? ` (${state.consecutive} evaluations in a row)` : '';
  return { status: 'BREACH', state, value: measured.current, bound: breach.bound, message: `${breach.message}${times}`, alert };
}

/** Whether a rule has a baseline a person may reset. */
export const hasBaseline = (rule: MonitorRule): boolean => rule.kind === 'REGRESSION';
