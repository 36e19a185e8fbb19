// `atelier model list|show|save|register|alias|rollback|deprecate|promote|approve|reject|lineage`: the model registry from
// the terminal, as GraphQL calls (server/registry/ does the work; see the README's "Model registry").
import { Command } from 'commander';
import type { Client } from './client';
import { CliError } from './errors';
import { collect, jsonObject } from './options';
import { table } from './tracking';

const label = (l: { level: string; categories: string[] }) => (l.categories.length ? `${l.level}{${l.categories.join(',')}}` : l.level);

interface VersionView {
  version: number;
  digest: string;
  flavor: string | null;
  deprecated: boolean;
  createdAt: string;
  label: { level: string; categories: string[] };
  aliases: { alias: string }[];
}

interface LineageView {
  run: { id: string; tasks: { id: string; node: string }[] };
  task: { id: string; node: string };
  moduleVersions: { ref: string }[];
  datasets: { name: string; version: number; columns: { name: string; label: { level: string; categories: string[] } }[] }[];
  parameters: unknown;
  metrics: { name: string; value: unknown; taskId: string }[];
  cacheKey: string | null;
}

/**
 * The run's metrics grouped by the task that reported them, the producing task's first (`evaluate: accuracy=0.98;
 * train: accuracy=0.97 loss=0.15`): tasks report metrics of the same name (a train and a test accuracy), which one
 * flat list showed side by side with nothing to tell them apart.
 */
export function metricsByTask(l: Pick<LineageView, 'run' | 'metrics'>): string {
  const nodes = new Map(l.run.tasks.map((t) => [t.id, t.node]));
  const groups = new Map<string, string[]>();
  for (const m of l.metrics) {
    const node = nodes.get(m.taskId) ?? `task ${m.taskId}`;
    groups.set(node, [...(groups.get(node) ?? []), `${m.name}=${m.value}`]);
  }
  return [...groups].map(([node, values]) => `${node}: ${values.join(' ')}`).join('; ');
}

interface Requirement {
  metric: string;
  min: number | null;
  max: number | null;
}

/** A model's metric bound, `accuracy>=0.9` or `loss<=0.2`; bounds on one metric together make one requirement. */
export function parseRequirements(specs: string[]): Requirement[] {
  const byMetric = new Map<string, Requirement>();
  for (const spec of specs) {
    const m = /^\s*([^<>=\s]+)\s*(>=|<=)\s*(\S+)\s*$/.exec(spec);
    const bound = m ? Number(m[3]) : Number.NaN;
    if (!m || m[3]!.trim() === '' || !Number.isFinite(bound))
      throw new CliError(`--require "${spec}" is not a bound: write METRIC>=MIN or METRIC<=MAX, e.g. --require "accuracy>=0.9" --require "loss<=0.2"`);
    const r = byMetric.get(m[1]!) ?? { metric: m[1]!, min: null, max: null };
    r[m[2] === '>=' ? 'min' : 'max'] = bound;
    byMetric.set(m[1]!, r);
  }
  return [...byMetric.values()];
}

/** Requirements as `--require` takes them: `accuracy>=0.9 loss<=0.2`. */
const bounds = (requirements: Requirement[]) =>
  requirements.flatMap((r) => [...(r.min === null ? [] : [`${r.metric}>=${r.min}`]), ...(r.max === null ? [] : [`${r.metric}<=${r.max}`])]).join(' ');

export function modelCommand(clientOf: (command: Command) => Client): Command {
  const model = new Command('model').description('the model registry: versions, lineage, aliases and promotions');
  const json = (value: unknown) => console.log(JSON.stringify(value, null, 2));

  model
    .command('list')
    .description('registered models')
    .option('--namespace <ns>', 'only this namespace')
    .option('--search <word>', 'names or descriptions containing it')
    .action(async (opts: { namespace?: string; search?: string }, command: Command) => {
      const { models } = await clientOf(command).request<{
        models: {
          fullName: string;
          owner: { name: string } | null;
          versions: { version: number }[];
          aliases: { alias: string; version: { version: number } }[];
        }[];
      }>(
        `query ($ns: String, $s: String) { models(namespace: $ns, search: $s) { fullName owner { name } versions { version } aliases { alias version { version } } } }`,
        { ns: opts.namespace ?? null, s: opts.search ?? null },
      );
      if (!models.length)
        return console.log(
          opts.namespace || opts.search
            ? 'no models match'
            : 'no models yet: register a task output with `atelier model register NS/NAME TASK_ID OUTPUT` (the iris example’s run registers one), or create an empty model with `atelier model save NS/NAME`',
        );
      const rows = models.map((m) => [
        m.fullName,
        m.owner?.name ?? '-',
        String(m.versions[0]?.version ?? '-'),
        m.aliases.map((a) => `${a.alias}=${a.version.version}`).join(' '),
      ]);
      console.log(table([['MODEL', 'TEAM', 'LATEST', 'ALIASES'], ...rows]));
    });

  model
    .command('show <name>')
    .description('a model: its versions (label, aliases), requirements and pending promotions')
    .option('--json', 'print as JSON')
    .action(async (name: string, opts: { json?: boolean }, command: Command) => {
      const { model: m } = await clientOf(command).request<{
        model: {
          fullName: string;
          versions: VersionView[];
          requirements: Requirement[];
          promotions: { id: string; alias: string; state: string; version: { version: number } }[];
        } | null;
      }>(
        `query ($n: String!) { model(name: $n) { fullName requirements { metric min max }
          versions { version digest flavor deprecated createdAt label { level categories } aliases { alias } }
          promotions { id alias state version { version } } } }`,
        { n: name },
      );
      if (!m) throw new CliError(`no model ${name}; list them with \`atelier model list\``);
      if (opts.json) return json(m);
      console.log(m.fullName);
      if (m.requirements.length) console.log(`promotions require: ${bounds(m.requirements)}`);
      const rows = m.versions.map((v) => [
        String(v.version),
        label(v.label),
        v.flavor ?? '-',
        v.aliases.map((a) => a.alias).join(',') || '-',
        v.deprecated ? 'deprecated' : '',
        v.digest.slice(0, 19),
      ]);
      console.log(table([['VERSION', 'LABEL', 'FLAVOR', 'ALIASES', 'STATE', 'DIGEST'], ...rows]));
      for (const p of m.promotions.filter((p) => p.state === 'PENDING')) console.log(`pending promotion ${p.id}: ${p.alias} -> ${p.version.version}`);
    });

  model
    .command('save <name>')
    .alias('create')
    .description('create a model (NAMESPACE/NAME) before its first version, or change its description and the metric bounds a promotion checks')
    .option('--description <text>', 'what the model is for')
    .option('--require <bound>', 'a metric bound every promoted version must meet: METRIC>=MIN or METRIC<=MAX (repeatable)', collect)
    .option('--clear-requirements', 'drop every metric bound')
    .action(async (name: string, opts: { description?: string; require?: string[]; clearRequirements?: boolean }, command: Command) => {
      if (opts.require && opts.clearRequirements) throw new CliError('--require and --clear-requirements contradict each other: give one.');
      const requirements = opts.clearRequirements ? [] : opts.require ? parseRequirements(opts.require) : null;
      const { saveModel: m } = await clientOf(command).request<{
        saveModel: { fullName: string; description: string; requirements: Requirement[] };
      }>(
        `mutation ($n: String!, $d: String, $r: [ModelRequirementInput!]) { saveModel(name: $n, description: $d, requirements: $r) { fullName description requirements { metric min max } } }`,
        {
          n: name,
          d: opts.description ?? null,
          r: requirements,
        },
      );
      console.log(`saved ${m.fullName}${m.description ? `: ${m.description}` : ''}`);
      console.log(`promotions require: ${bounds(m.requirements) || 'no metric bounds'}`);
      console.log(`register a version with \`atelier model register ${m.fullName} TASK_ID OUTPUT\``);
    });

  model
    .command('register <name> <taskId> <output>')
    .description('register a task output (an output name or an artifact folder) as a version; the same content is the same version')
    .option('--flavor <flavor>', 'e.g. sklearn, pytorch, onnx')
    .option('--metadata <json>', 'free metadata as a JSON object, e.g. \'{"framework": "sklearn"}\'', jsonObject)
    .option('--signature <json>', 'its inputs and outputs as a JSON object, e.g. \'{"inputs": [{"name": "features", "type": "float[4]"}]}\'', jsonObject)
    .action(
      async (
        name: string,
        taskId: string,
        output: string,
        opts: { flavor?: string; metadata?: Record<string, unknown>; signature?: Record<string, unknown> },
        command: Command,
      ) => {
        const { registerModelVersion: r } = await clientOf(command).request<{
          registerModelVersion: { created: boolean; version: { ref: string; digest: string } };
        }>(
          `mutation ($m: String!, $t: ID!, $o: String!, $f: String, $md: JSON, $s: JSON) { registerModelVersion(model: $m, taskId: $t, output: $o, flavor: $f, metadata: $md, signature: $s) { created version { ref digest } } }`,
          { m: name, t: taskId, o: output, f: opts.flavor ?? null, md: opts.metadata ?? null, s: opts.signature ?? null },
        );
        console.log(`${r.created ? 'registered' : 'already registered (same content)'} ${r.version.ref} ${r.version.digest}`);
      },
    );

  const move =
    (kind: 'alias' | 'rollback') =>
    async (name: string, alias: string, version: string | undefined, opts: { domain?: string; reason?: string }, command: Command) => {
      const query =
        kind === 'alias'
          ? `mutation ($m: String!, $a: String!, $v: String!, $d: Domain, $r: String) { move: setModelAlias(model: $m, alias: $a, version: $v, domain: $d, reason: $r) { version { ref } previous { version } } }`
          : `mutation ($m: String!, $a: String!, $r: String) { move: rollbackModelAlias(model: $m, alias: $a, reason: $r) { version { ref } previous { version } } }`;
      const { move: m } = await clientOf(command).request<{ move: { version: { ref: string }; previous: { version: number } | null } }>(query, {
        m: name,
        a: alias,
        ...(kind === 'alias' ? { v: version, d: opts.domain ?? null } : {}),
        r: opts.reason ?? null,
      });
      console.log(`${alias} -> ${m.version.ref}${m.previous ? ` (was ${m.previous.version})` : ''}`);
    };
  model
    .command('alias <name> <alias> <version>')
    .description('point an alias (outside production) at a version number or another alias')
    .option('--domain <domain>', 'the alias’s domain when it is new (default experimentation)')
    .option('--reason <why>')
    .action(move('alias'));
  model
    .command('rollback <name> <alias>')
    .description('move an alias back to where it pointed before its last move (rollbacks stack)')
    .option('--reason <why>')
    .action((name: string, alias: string, opts: { reason?: string }, command: Command) => move('rollback')(name, alias, undefined, opts, command));

  model
    .command('deprecate <ref>')
    .description('deprecate a version (NAME@VERSION): no alias moves to it; --undo restores it')
    .option('--reason <why>')
    .option('--undo', 'restore it')
    .action(async (ref: string, opts: { reason?: string; undo?: boolean }, command: Command) => {
      await clientOf(command).request(
        `mutation ($r: String!, $w: String, $d: Boolean) { deprecateModelVersion(ref: $r, reason: $w, deprecated: $d) { version } }`,
        {
          r: ref,
          w: opts.reason ?? null,
          d: !opts.undo,
        },
      );
      console.log(`${ref} ${opts.undo ? 'restored' : 'deprecated'}`);
    });

  model
    .command('promote <ref> <alias>')
    .description('ask for production alias ALIAS to point at NAME@VERSION; another person with the production grant decides')
    .requiredOption('--reason <why>', 'why this version should serve production')
    .action(async (ref: string, alias: string, opts: { reason: string }, command: Command) => {
      const at = ref.lastIndexOf('@');
      if (at < 0) throw new CliError(`Name the version: ${ref}@VERSION.`);
      const { requestModelPromotion: p } = await clientOf(command).request<{ requestModelPromotion: { id: string } }>(
        `mutation ($m: String!, $v: String!, $a: String!, $r: String!) { requestModelPromotion(model: $m, version: $v, alias: $a, reason: $r) { id } }`,
        { m: ref.slice(0, at), v: ref.slice(at + 1), a: alias, r: opts.reason },
      );
      console.log(`promotion ${p.id} requested; another person approves it with \`atelier model approve ${p.id}\``);
    });

  for (const [verb, approve] of [
    ['approve', true],
    ['reject', false],
  ] as const)
    model
      .command(`${verb} <promotionId>`)
      .description(`${verb} a pending promotion${approve ? ' (moves the production alias)' : ''}`)
      .option('--reason <why>')
      .action(async (id: string, opts: { reason?: string }, command: Command) => {
        const { decideModelPromotion: d } = await clientOf(command).request<{
          decideModelPromotion: { state: string; alias: string; version: { ref: string } };
        }>(`mutation ($id: ID!, $a: Boolean!, $r: String) { decideModelPromotion(id: $id, approve: $a, reason: $r) { state alias version { ref } } }`, {
          id,
          a: approve,
          r: opts.reason ?? null,
        });
        console.log(`${d.state.toLowerCase()}: ${d.alias} -> ${d.version.ref}`);
      });

  model
    .command('lineage <ref>')
    .description('what a version (NAME@VERSION or NAME@ALIAS) came from: run, task, modules, datasets and columns, params, metrics')
    .option('--json', 'print as JSON')
    .action(async (ref: string, opts: { json?: boolean }, command: Command) => {
      const { modelVersion: v } = await clientOf(command).request<{
        modelVersion: { ref: string; label: { level: string; categories: string[] }; lineage: LineageView } | null;
      }>(
        `query ($r: String!) { modelVersion(ref: $r) { ref label { level categories } lineage { run { id tasks { id node } } task { id node } moduleVersions { ref }
          datasets { name version columns { name label { level categories } } } parameters metrics { name value taskId } cacheKey } } }`,
        { r: ref },
      );
      if (!v) throw new CliError(`no model version ${ref}; \`atelier model show NAME\` lists a model's versions`);
      if (opts.json) return json(v);
      const l = v.lineage;
      console.log(`${v.ref}  label ${label(v.label)}\nrun ${l.run.id}  task ${l.task.node} (${l.task.id})\ncache key ${l.cacheKey ?? '-'}`);
      console.log(`modules ${l.moduleVersions.map((m) => m.ref).join(', ')}`);
      for (const d of l.datasets) console.log(`dataset ${d.name}@${d.version}: ${d.columns.map((c) => `${c.name} ${label(c.label)}`).join(', ')}`);
      console.log(`params ${JSON.stringify(l.parameters)}\nmetrics ${metricsByTask(l) || '-'}`);
    });
  return model;
}
