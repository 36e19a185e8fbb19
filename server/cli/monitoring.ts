// `atelier monitor …`, `atelier alert …` and `atelier observe …`: monitors (create, list, show, update, pause,
// resume, delete), the alerts inbox with people's feedback (ack, resolve, false-positive, annotate, rebaseline), and a quick
// observation. A target is written KIND:REF: `dataset:ns/name`, `model:ns/model@3` (a version) or
// `model:ns/model@champion` (an alias), `workflow:name`.
import { Command, InvalidArgumentError } from 'commander';
import { ApiError, type Client } from './client';
import { assertSomeChange, positiveInt } from './options';

interface Target {
  kind: string;
  ref: string;
}

interface MonitorView {
  id: string;
  name: string;
  metric: string;
  paused: boolean;
  intervalSeconds: number;
  team: { name: string } | null;
  target: Target;
  rules: Record<string, unknown>[];
  actions: Record<string, unknown>[];
  state: Record<string, { consecutive: number; lastValue: number | null }>;
}

interface AlertView {
  id: string;
  state: string;
  title: string;
  breaches: number;
  openedAt: string;
  target: Target;
  monitor: { id: string; name: string } | null;
}

const MONITOR = 'id name metric paused intervalSeconds team { name } target { kind ref } rules { id kind } actions { kind workflow model alias } state';
const ALERT = 'id state title breaches openedAt target { kind ref } monitor { id name }';

/** `dataset:ns/name`, `model:ns/m@3`, `model:ns/m@alias`, `workflow:name` → the API's target. */
export function parseTarget(raw: string): Target {
  const at = raw.indexOf(':');
  const kind = at > 0 ? raw.slice(0, at).toLowerCase() : '';
  const ref = raw.slice(at + 1);
  if (at <= 0 || !ref)
    throw new InvalidArgumentError(`expected KIND:REF (dataset:ns/name, model:ns/model@3, model:ns/model@alias, workflow:name), got "${raw}"`);
  if (kind === 'dataset') return { kind: 'DATASET', ref };
  if (kind === 'workflow') return { kind: 'WORKFLOW', ref };
  if (kind === 'model') {
    const selector = ref.split('@')[1];
    if (!selector) throw new InvalidArgumentError(`a model target names a version or an alias: model:${ref}@3 or model:${ref}@champion`);
    return { kind: /^\d+$/.test(selector) ? 'MODEL_VERSION' : 'ALIAS', ref };
  }
  throw new InvalidArgumentError(`unknown target kind "${kind}": use dataset:, model: or workflow: (e.g. dataset:ml/features)`);
}

const json =
  (what: string) =>
  (raw: string, previous: unknown[] = []) => {
    try {
      const value = JSON.parse(raw);
      if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new Error('not an object');
      return [...previous, value];
    } catch {
      throw new InvalidArgumentError(
        `expected a JSON object for ${what}, e.g. ${what === 'a rule' ? `'{"kind":"THRESHOLD","above":100}'` : `'{"kind":"START_WORKFLOW","workflow":"retrain"}'`}`,
      );
    }
  };

function dimension(raw: string, previous: Record<string, string> = {}): Record<string, string> {
  const eq = raw.indexOf('=');
  if (eq < 1) throw new InvalidArgumentError(`expected --dim key=value, got "${raw}"`);
  return { ...previous, [raw.slice(0, eq)]: raw.slice(eq + 1) };
}

const targetText = (t: Target) => `${t.kind.toLowerCase().replace('_', '-')} ${t.ref}`;

function describeMonitor(m: MonitorView): string {
  const rules = m.rules.map((r) => `${r.id}:${String(r.kind).toLowerCase()}`).join(', ');
  const actions = m.actions.length ? `  actions ${m.actions.map((a) => String(a.kind).toLowerCase().replace(/_/g, '-')).join(', ')}` : '';
  return `${m.id}  "${m.name}"  ${targetText(m.target)}  ${m.metric}  rules ${rules}  every ${m.intervalSeconds}s${m.paused ? '  PAUSED' : ''}${m.team ? `  team ${m.team.name}` : ''}${actions}`;
}

const describeAlert = (a: AlertView) =>
  `${a.id}  ${a.state.padEnd(14)}  ${a.openedAt}  ${a.breaches}×  ${a.title}${a.monitor ? `  (monitor ${a.monitor.id})` : ''}`;

export function monitorCommand(client: (command: Command) => Client): Command {
  const monitor = new Command('monitor').description('monitors: rules over a metric of a model, alias, dataset or workflow that open alerts');

  monitor
    .command('create <name> <target> <metric>')
    .description('create a monitor (target: dataset:ns/name, model:ns/model@3, model:ns/model@alias, workflow:name)')
    .requiredOption('-r, --rule <json>', 'a rule as JSON (repeatable), e.g. \'{"kind":"THRESHOLD","above":100,"consecutive":2}\'', json('a rule'))
    .option(
      '-a, --action <json>',
      'an action when an alert opens (repeatable), e.g. \'{"kind":"ROLLBACK_ALIAS","model":"ml/churn","alias":"champion"}\'',
      json('an action'),
    )
    .option('--every <seconds>', 'how often it is evaluated (default 60)', positiveInt)
    .option('--team <name>', 'the owning team (default: your only team)')
    .action(
      async (name: string, target: string, metric: string, opts: { rule: unknown[]; action?: unknown[]; every?: number; team?: string }, command: Command) => {
        const { createMonitor } = await client(command).request<{ createMonitor: MonitorView }>(
          `mutation ($i: MonitorInput!) { createMonitor(input: $i) { ${MONITOR} } }`,
          {
            i: {
              name,
              target: parseTarget(target),
              metric,
              rules: opts.rule,
              actions: opts.action ?? [],
              intervalSeconds: opts.every ?? null,
              team: opts.team ?? null,
            },
          },
        );
        console.log(`created monitor ${describeMonitor(createMonitor)}`);
      },
    );

  monitor
    .command('list <target>')
    .description('list the monitors of a target')
    .action(async (target: string, _opts: unknown, command: Command) => {
      const { monitors } = await client(command).request<{ monitors: MonitorView[] }>(
        `query ($t: MonitorTargetInput!) { monitors(target: $t) { ${MONITOR} } }`,
        {
          t: parseTarget(target),
        },
      );
      if (!monitors.length) console.log(`no monitors of ${target}: create one with \`atelier monitor create NAME ${target} METRIC --rule '{...}'\``);
      for (const m of monitors) console.log(describeMonitor(m));
    });

  monitor
    .command('show <id>')
    .description('show a monitor: its rules and their state, its open alerts and its recent history')
    .option('-n, --limit <n>', 'how many history events', positiveInt, 10)
    .action(async (id: string, opts: { limit: number }, command: Command) => {
      const { monitor: m } = await client(command).request<{
        monitor: (MonitorView & { alerts: AlertView[]; history: { kind: string; at: string; reason: string; actor: { name: string } | null }[] }) | null;
      }>(`query ($id: ID!) { monitor(id: $id) { ${MONITOR} alerts(states: [OPEN, ACKNOWLEDGED]) { ${ALERT} } history { kind at reason actor { name } } } }`, {
        id,
      });
      if (!m) throw new ApiError(`There is no monitor ${id}; \`atelier monitor list TARGET\` shows them.`, 'NOT_FOUND');
      console.log(describeMonitor(m));
      for (const r of m.rules) {
        const s = m.state[String(r.id)];
        console.log(
          `    rule ${r.id} ${String(r.kind).toLowerCase()}: ${s ? `last ${s.lastValue ?? 'no data'}, ${s.consecutive} breach(es) in a row` : 'not evaluated yet'}`,
        );
      }
      console.log(m.alerts.length ? 'open alerts:' : 'no open alerts');
      for (const a of m.alerts) console.log(`    ${describeAlert(a)}`);
      console.log('history (newest first):');
      for (const e of m.history.slice(0, opts.limit))
        console.log(`    ${e.at}  ${e.kind.padEnd(14)}  ${e.actor?.name ?? 'evaluator'}${e.reason ? `  ${e.reason}` : ''}`);
    });

  monitor
    .command('update <id>')
    .description('change a monitor; what you leave out keeps its value (its target cannot change: create another)')
    .option('--name <name>', 'a new name')
    .option('--metric <metric>', 'a new metric to watch (its rules start over)')
    .option('-r, --rule <json>', 'a rule as JSON (repeatable); replaces all its rules, and a rule kept as it was keeps its state', json('a rule'))
    .option('-a, --action <json>', 'an action when an alert opens (repeatable); replaces all its actions', json('an action'))
    .option('--every <seconds>', 'how often it is evaluated', positiveInt)
    .option('--reason <why>', 'recorded in its history')
    .action(
      async (id: string, opts: { name?: string; metric?: string; rule?: unknown[]; action?: unknown[]; every?: number; reason?: string }, command: Command) => {
        assertSomeChange(command, ['reason']);
        const { updateMonitor } = await client(command).request<{ updateMonitor: MonitorView }>(
          `mutation ($id: ID!, $i: MonitorChangeInput!) { updateMonitor(id: $id, input: $i) { ${MONITOR} } }`,
          {
            id,
            i: {
              name: opts.name ?? null,
              metric: opts.metric ?? null,
              rules: opts.rule ?? null,
              actions: opts.action ?? null,
              intervalSeconds: opts.every ?? null,
              reason: opts.reason ?? null,
            },
          },
        );
        console.log(`updated monitor ${describeMonitor(updateMonitor)}`);
      },
    );

  for (const [verb, paused] of [
    ['pause', true],
    ['resume', false],
  ] as const)
    monitor
      .command(`${verb} <id>`)
      .description(paused ? 'pause a monitor (no evaluations until resumed)' : 'resume a paused monitor (evaluated at once)')
      .option('--reason <why>', 'recorded in its history')
      .action(async (id: string, opts: { reason?: string }, command: Command) => {
        const { pauseMonitor } = await client(command).request<{ pauseMonitor: MonitorView }>(
          `mutation ($id: ID!, $p: Boolean!, $r: String) { pauseMonitor(id: $id, paused: $p, reason: $r) { ${MONITOR} } }`,
          { id, p: paused, r: opts.reason ?? null },
        );
        console.log(`${verb}d monitor ${describeMonitor(pauseMonitor)}`);
      });

  monitor
    .command('delete <id>')
    .description('delete a monitor (its history is kept; its open alerts are resolved)')
    .option('--reason <why>', 'recorded in its history')
    .action(async (id: string, opts: { reason?: string }, command: Command) => {
      const { deleteMonitor } = await client(command).request<{ deleteMonitor: MonitorView }>(
        `mutation ($id: ID!, $r: String) { deleteMonitor(id: $id, reason: $r) { ${MONITOR} } }`,
        { id, r: opts.reason ?? null },
      );
      console.log(`deleted monitor ${deleteMonitor.id} "${deleteMonitor.name}"`);
    });
  return monitor;
}

export function alertCommand(client: (command: Command) => Client): Command {
  const alert = new Command('alert').description('the alerts of your teams, and your feedback on them');

  alert
    .command('list')
    .description('alerts of your teams, newest first (default: open ones)')
    .option('--all', 'closed ones too')
    .option('-n, --limit <n>', 'how many', positiveInt, 50)
    .action(async (opts: { all?: boolean; limit: number }, command: Command) => {
      const { alerts } = await client(command).request<{ alerts: AlertView[] }>(
        `query ($s: [AlertState!], $l: Int) { alerts(states: $s, limit: $l) { ${ALERT} } }`,
        {
          s: opts.all ? null : ['OPEN', 'ACKNOWLEDGED'],
          l: opts.limit,
        },
      );
      if (!alerts.length) console.log(opts.all ? 'no alerts' : 'no open alerts (`atelier alert list --all` shows closed ones too)');
      for (const a of alerts) console.log(describeAlert(a));
    });

  alert
    .command('show <id>')
    .description('show an alert, what its monitor’s actions did, and its history')
    .action(async (id: string, _opts: unknown, command: Command) => {
      const { alert: a } = await client(command).request<{
        alert:
          | (AlertView & {
              value: number | null;
              bound: number | null;
              actions: { kind: string; status: string; runId: string | null; message: string | null }[];
              events: { kind: string; at: string; reason: string; actor: { name: string } | null }[];
            })
          | null;
      }>(`query ($id: ID!) { alert(id: $id) { ${ALERT} value bound actions { kind status runId message } events { kind at reason actor { name } } } }`, { id });
      if (!a) throw new ApiError(`There is no alert ${id}; \`atelier alert list\` shows them.`, 'NOT_FOUND');
      console.log(describeAlert(a));
      console.log(`    target ${targetText(a.target)}  value ${a.value ?? '-'}  bound ${a.bound ?? '-'}`);
      for (const x of a.actions) console.log(`    action ${x.kind.toLowerCase().replace(/_/g, '-')}: ${x.status}${x.message ? `  ${x.message}` : ''}`);
      for (const e of a.events) console.log(`    ${e.at}  ${e.kind.padEnd(14)}  ${e.actor?.name ?? 'evaluator'}${e.reason ? `  ${e.reason}` : ''}`);
    });

  const feedback = [
    ['ack', 'acknowledgeAlert', 'someone is looking at it', false, false],
    ['resolve', 'resolveAlert', 'close it: fixed', true, false],
    ['false-positive', 'markAlertFalsePositive', 'close it as a false alarm (the rule is not changed)', true, false],
    ['annotate', 'annotateAlert', 'mark a one-off event: the window is left out of trailing baselines', true, true],
    ['rebaseline', 'rebaselineAlert', 'after a lasting change: the last measured value is the baseline from now on', true, false],
  ] as const;
  for (const [verb, mutation, help, needsReason, window] of feedback) {
    const c = alert.command(`${verb} <id>`).description(help);
    if (needsReason) c.requiredOption('--reason <why>', 'why (recorded and audited)');
    else c.option('--reason <why>', 'why (recorded and audited)');
    if (window) c.option('--from <time>', 'the window’s start (default: the alert’s opening)').option('--to <time>', 'its end (default: now)');
    c.action(async (id: string, opts: { reason?: string; from?: string; to?: string }, command: Command) => {
      const args = window ? ', $from: DateTime, $to: DateTime' : '';
      const pass = window ? ', from: $from, to: $to' : '';
      const result = await client(command).request<Record<string, AlertView>>(
        `mutation ($id: ID!, $reason: String${needsReason ? '!' : ''}${args}) { ${mutation}(id: $id, reason: $reason${pass}) { ${ALERT} } }`,
        { id, reason: opts.reason ?? null, ...(window ? { from: opts.from ?? null, to: opts.to ?? null } : {}) },
      );
      console.log(describeAlert(result[mutation]!));
    });
  }
  return alert;
}

export function observeCommand(client: (command: Command) => Client): Command {
  return new Command('observe')
    .description('record one observation (target: dataset:ns/name, model:ns/model@3, model:ns/model@alias, workflow:name)')
    .argument('<target>')
    .argument('<metric>')
    .argument('<value>')
    .option('--dim <key=value>', 'a dimension (repeatable), e.g. --dim region=eu', dimension)
    .option('--at <time>', 'when it was observed (ISO 8601; default: now)')
    .action(async (target: string, metric: string, value: string, opts: { dim?: Record<string, string>; at?: string }, command: Command) => {
      const v = Number(value);
      if (value.trim() === '' || !Number.isFinite(v)) throw new InvalidArgumentError(`VALUE must be a finite number, got "${value}"`);
      const { recordObservations } = await client(command).request<{ recordObservations: { recorded: number } }>(
        `mutation ($o: [ObservationInput!]!) { recordObservations(observations: $o) { recorded } }`,
        { o: [{ target: parseTarget(target), metric, value: v, at: opts.at ?? null, dimensions: opts.dim ?? null }] },
      );
      console.log(`recorded ${recordObservations.recorded} observation of ${metric} = ${v} for ${target}`);
    });
}
