// `atelier deploy …`: create, list, show, promote, roll back, fail over, restore and delete deployments (model aliases
// or versions served through a deployer; docs/deployments.md), printed as readable tables.
import { Command, InvalidArgumentError, Option } from 'commander';
import { ApiError, type Client } from './client';
import { formatTable, positiveInt } from './options';

interface DeploymentView {
  id: string;
  name: string;
  model: string;
  domain: string;
  deployer: string;
  url: string | null;
  ready: boolean;
  message: string;
  failedOver: boolean;
  traffic: { revision: number; percent: number }[];
  revisions: {
    number: number;
    state: string;
    health: string | null;
    restarts: number;
    message: string | null;
    modelVersion: { version: number } | null;
    serving: { requests: number; errorRate: number; latencyP50Ms: number; latencyP99Ms: number } | null;
  }[];
  rollout: { revision: number; step: number; percent: number; state: string; reason: string | null; nextDecisionAt: string | null } | null;
  fallback: { kind: string; revision: number | null };
  rolloutPolicy: {
    steps: { percent: number; dwellSeconds: number }[];
    gates: { metric: string; rule: { kind: string; aggregate: string | null; above: number | null; below: number | null } }[];
    noData: string;
  };
  events: { kind: string; revision: number | null; reason: string | null; createdAt: string; actor: { name: string } | null }[];
}

const FIELDS = `id name model domain deployer url ready message failedOver traffic { revision percent }
  revisions { number state health restarts message modelVersion { version } serving { requests errorRate latencyP50Ms latencyP99Ms } }
  rollout { revision step percent state reason nextDecisionAt } fallback { kind revision }
  rolloutPolicy { steps { percent dwellSeconds } gates { metric rule { kind aggregate above below } } noData }
  events(limit: 10) { kind revision reason createdAt actor { name } }`;

const split = (d: DeploymentView) => d.traffic.map((t) => `r${t.revision} ${t.percent}%`).join(' / ') || '-';

/** `--settings`: a JSON object. */
function settingsObject(raw: string): Record<string, unknown> {
  let value: unknown;
  try {
    value = JSON.parse(raw);
  } catch {
    // reported below
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new InvalidArgumentError(`expected a JSON object, e.g. '{"port": 8080}', got ${JSON.stringify(raw)}`);
  }
  return value as Record<string, unknown>;
}

/** `10:300,50:600,100`: percent:dwellSeconds steps. */
function steps(raw: string) {
  return raw.split(',').map((part) => {
    const [percent, dwell] = part.split(':');
    const p = Number(percent);
    const d = dwell === undefined ? undefined : Number(dwell);
    if (!Number.isInteger(p) || (d !== undefined && !Number.isInteger(d))) throw new InvalidArgumentError(`expected PERCENT[:DWELL_SECONDS],…, got "${part}"`);
    return { percent: p, dwellSeconds: d };
  });
}

/** `serving.error_rate>0.01` (above) or `serving.latency_p99_ms<250`… (below): a THRESHOLD gate on the step's mean. */
function gate(raw: string, previous: unknown[] = []) {
  const m = /^([A-Za-z0-9_][A-Za-z0-9_.:/-]*)\s*([<>])\s*(-?\d+(?:\.\d+)?(?:e-?\d+)?)$/i.exec(raw.trim());
  if (!m) throw new InvalidArgumentError(`expected METRIC>VALUE (roll back above) or METRIC<VALUE (below), e.g. serving.error_rate>0.01; got "${raw}"`);
  const [, metric, op, value] = m;
  // 1e999 reads as Infinity, which JSON sends as null: the server would then say the gate has no bound at all.
  if (!Number.isFinite(Number(value))) throw new InvalidArgumentError(`expected a finite VALUE in METRIC>VALUE or METRIC<VALUE; got "${raw}"`);
  const rule = { kind: 'THRESHOLD', aggregate: 'MEAN', [op === '>' ? 'above' : 'below']: Number(value) };
  return [...previous, { metric, rule }];
}

/** `steps 10% 300s → 100%; gates serving.error_rate > 0.01 (mean); no data: hold`. */
function policyText(p: DeploymentView['rolloutPolicy']): string {
  const steps = p.steps.length ? `steps ${p.steps.map((s) => `${s.percent}%${s.dwellSeconds ? ` ${s.dwellSeconds}s` : ''}`).join(' → ')}` : 'all at once';
  const rule = (r: DeploymentView['rolloutPolicy']['gates'][number]['rule']) =>
    r.kind === 'THRESHOLD'
      ? [r.above !== null ? `> ${r.above}` : '', r.below !== null ? `< ${r.below}` : ''].filter(Boolean).join(' or ')
      : r.kind.toLowerCase();
  const gates = p.gates.length
    ? `; gates ${p.gates.map((g) => `${g.metric} ${rule(g.rule)}${g.rule.aggregate ? ` (${g.rule.aggregate.toLowerCase()})` : ''}`).join(', ')}; no data: ${p.noData.toLowerCase()}`
    : '';
  return steps + gates;
}

/** Rows under their header row, as every CLI table (options.ts). */
const table = ([header, ...rows]: string[][]): string => formatTable(header!, rows).join('\n');

function show(d: DeploymentView): string {
  // A failover leaves the revisions' states as they were: the fallback (often RETIRED) takes the traffic and the one
  // serving before none until restored. The STATE column says so, or it contradicts the traffic line above it.
  const share = new Map(d.traffic.map((t) => [t.revision, t.percent]));
  const stateOf = (r: DeploymentView['revisions'][number]) => {
    if (!d.failedOver) return r.state;
    if (share.get(r.number)) return `${r.state} (fallback ${share.get(r.number)}%)`;
    return r.state === 'SERVING' ? 'HELD (failed over)' : r.state;
  };
  const lines = [
    `${d.name}  ${d.model}  ${d.domain}  via ${d.deployer}${d.failedOver ? '  FAILED OVER' : ''}`,
    `url      ${d.url ?? '-'}  (${d.ready ? 'ready' : 'not ready'}: ${d.message})`,
    `traffic  ${split(d)}`,
    `fallback ${d.fallback.kind.toLowerCase()}${d.fallback.revision ? ` (revision ${d.fallback.revision})` : ''}`,
    `policy   ${policyText(d.rolloutPolicy)}`,
  ];
  if (d.rollout)
    lines.push(
      `rollout  revision ${d.rollout.revision} ${d.rollout.state.toLowerCase()} at ${d.rollout.percent}%${d.rollout.step >= 0 ? ` (step ${d.rollout.step + 1})` : ''}${d.rollout.reason ? `: ${d.rollout.reason}` : ''}${d.rollout.nextDecisionAt ? `, next decision ${d.rollout.nextDecisionAt}` : ''}`,
    );
  lines.push(
    '',
    table([
      // REQ to P99 MS: the last window its router measured (serving observations), '-' before it had traffic.
      ['REV', 'VERSION', 'STATE', 'HEALTH', 'RESTARTS', 'REQ', 'ERRORS', 'P50 MS', 'P99 MS', 'MESSAGE'],
      ...d.revisions.map((r) => [
        String(r.number),
        String(r.modelVersion?.version ?? '?'),
        stateOf(r),
        r.health ?? '-',
        String(r.restarts),
        ...(r.serving
          ? [String(r.serving.requests), `${(r.serving.errorRate * 100).toFixed(1)}%`, String(r.serving.latencyP50Ms), String(r.serving.latencyP99Ms)]
          : ['-', '-', '-', '-']),
        r.message ?? '',
      ]),
    ]),
  );
  lines.push(
    '',
    table([
      ['WHEN', 'EVENT', 'REV', 'BY', 'REASON'],
      ...d.events.map((e) => [e.createdAt, e.kind, String(e.revision ?? ''), e.actor?.name ?? 'reconciler', e.reason ?? '']),
    ]),
  );
  return lines.join('\n');
}

export function deployCommand(connect: (command: Command) => Client): Command {
  const deploy = new Command('deploy').description('serve model aliases or versions through deployers, with canary rollouts and an instant fallback');
  const one = async (command: Command, name: string) => {
    const { deployment } = await connect(command).request<{ deployment: DeploymentView | null }>(`query ($n: String!) { deployment(name: $n) { ${FIELDS} } }`, {
      n: name,
    });
    if (!deployment) throw new ApiError(`No deployment "${name}"; list them with \`atelier deploy list\`.`, 'NOT_FOUND');
    return deployment;
  };

  deploy
    .command('create <name> <model>')
    .description('serve MODEL (ns/model@alias follows the alias; ns/model/3 pins version 3)')
    .addOption(new Option('--domain <domain>', 'governance domain').choices(['experimentation', 'adhoc', 'production']).default('experimentation'))
    .option('--deployer <name>', 'deployer plugin', 'local')
    .option('--steps <steps>', 'canary steps PERCENT[:DWELL_SECONDS],… ending at 100 (default: all at once)', steps)
    .option(
      '--gate <rule>',
      "roll a step back when the new revision's mean is above (>) or below (<) VALUE, e.g. serving.error_rate>0.01 (repeatable; needs --steps)",
      gate,
    )
    .addOption(
      new Option('--on-no-data <what>', "a gate with no observations after a step's dwell: hold, pass or rollback (default: hold)").choices([
        'hold',
        'pass',
        'rollback',
      ]),
    )
    .option('--ready-timeout <seconds>', 'roll back a revision not ready within this', positiveInt)
    .option('--fallback-version <n>', 'a version applied up front as the instant fallback (default: the previous revision)', positiveInt)
    .option('--settings <json>', 'deployer settings as JSON, e.g. {"port": 8080}', settingsObject)
    .action(
      async (
        name: string,
        model: string,
        opts: {
          domain: string;
          deployer: string;
          steps?: unknown[];
          gate?: unknown[];
          onNoData?: string;
          readyTimeout?: number;
          fallbackVersion?: number;
          settings?: object;
        },
        command: Command,
      ) => {
        const input = {
          name,
          model,
          domain: opts.domain,
          deployer: opts.deployer,
          settings: opts.settings,
          fallbackVersion: opts.fallbackVersion,
          rollout:
            opts.steps || opts.readyTimeout || opts.gate
              ? {
                  steps: opts.steps,
                  gates: opts.gate,
                  noData: opts.onNoData?.toUpperCase(),
                  readyTimeoutSeconds: opts.readyTimeout,
                }
              : undefined,
        };
        await connect(command).request(`mutation ($i: CreateDeploymentInput!) { createDeployment(input: $i) { id } }`, { i: input });
        console.log(`created deployment ${name} serving ${model}; watch it with \`atelier deploy show ${name}\``);
      },
    );

  deploy
    .command('list')
    .description('deployments you may read')
    .option('--model <model>', 'only those of ns/model')
    .action(async (opts: { model?: string }, command: Command) => {
      const { deployments } = await connect(command).request<{ deployments: DeploymentView[] }>(
        `query ($m: String) { deployments(model: $m, first: 100) { name model domain deployer url ready failedOver traffic { revision percent } rollout { revision percent state } } }`,
        { m: opts.model ?? null },
      );
      if (!deployments.length)
        return console.log(opts.model ? `no deployments of ${opts.model}` : 'no deployments: serve a model with `atelier deploy create NAME NS/MODEL@ALIAS`');
      console.log(
        table([
          ['NAME', 'MODEL', 'DOMAIN', 'DEPLOYER', 'READY', 'TRAFFIC', 'ROLLOUT', 'URL'],
          ...deployments.map((d) => [
            d.name,
            d.model,
            d.domain,
            d.deployer,
            d.ready ? 'yes' : 'no',
            `${split(d)}${d.failedOver ? ' (failed over)' : ''}`,
            d.rollout ? `r${d.rollout.revision} ${d.rollout.state.toLowerCase()} ${d.rollout.percent}%` : '-',
            d.url ?? '-',
          ]),
        ]),
      );
    });

  deploy
    .command('show <name>')
    .description('revisions, traffic, rollout and recent events')
    .action(async (name: string, _o: unknown, command: Command) => console.log(show(await one(command, name))));

  const action = (verb: string, mutation: string, help: string, reasonRequired = false) =>
    deploy
      .command(`${verb} <name>`)
      .description(help)
      .addOption(
        reasonRequired
          ? new Option('--reason <why>', 'why (kept in the events and the audit log)').makeOptionMandatory()
          : new Option('--reason <why>', 'why (kept in the events and the audit log)'),
      )
      .action(async (name: string, opts: { reason?: string }, command: Command) => {
        const result = await connect(command).request<Record<string, DeploymentView>>(
          `mutation ($n: String!, $r: String${reasonRequired ? '!' : ''}) { ${mutation}(id: $n, reason: $r) { ${FIELDS} } }`,
          {
            n: name,
            r: opts.reason ?? null,
          },
        );
        console.log(show(result[mutation]!));
      });
  action('promote', 'promoteDeployment', 'skip a running rollout to 100% of the new revision');
  action('rollback', 'rollbackDeployment', 'roll a rollout back at any step (or back to the previous revision)');
  action('failover', 'failoverDeployment', 'send all traffic to the fallback at once (pauses a rollout)', true);
  action('restore', 'restoreDeployment', 'reverse a failover: the split before it comes back');

  deploy
    .command('delete <name>')
    .description('stop serving and delete the deployment; waits until its deployer has stopped it')
    .option('--no-wait', 'return once the deletion is recorded (the reconciler finishes it)')
    .option('--timeout <seconds>', 'how long to wait for the deployer', positiveInt, 120)
    .action(async (name: string, opts: { wait: boolean; timeout: number }, command: Command) => {
      const api = connect(command);
      const id = (await api.request<{ deleteDeployment: string }>(`mutation ($n: String!) { deleteDeployment(id: $n) }`, { n: name })).deleteDeployment;
      // The server stops serving before it answers, unless its deployer is still busy with it (an apply under way):
      // then the reconciler finishes, and this waits for it as kubectl delete waits for finalizers.
      const left = async () =>
        (await api.request<{ deployment: { message: string | null } | null }>(`query ($n: String!) { deployment(id: $n) { deleting message } }`, { n: id }))
          .deployment;
      let still = await left();
      if (still && opts.wait) {
        console.log(`deleting deployment ${name}: waiting for its deployer to stop it…`);
        const deadline = Date.now() + opts.timeout * 1000;
        while (still && Date.now() < deadline) {
          await new Promise((resolve) => setTimeout(resolve, 500));
          still = await left();
        }
      }
      if (!still) return console.log(`deleted deployment ${name}`);
      const why = still.message ? ` (${still.message})` : '';
      if (!opts.wait)
        return console.log(`deleting deployment ${name}: its deployer has not stopped it yet${why}; \`atelier deploy show ${name}\` until it is gone`);
      throw new ApiError(
        `Deployment "${name}" is still being deleted after ${opts.timeout} s${why}; the reconciler keeps trying: follow it with \`atelier deploy show ${name}\`, or wait longer with --timeout.`,
        'TIMEOUT',
      );
    });

  return deploy;
}
