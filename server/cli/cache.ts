// `atelier cache …`: the savings (stats), why a task missed (explain), which tasks of a workflow would hit before
// starting it (preview), and dropping entries (invalidate).
import { Command, Option } from 'commander';
import { domains } from '../vocabulary';
import type { Client } from './client';
import { CliError } from './errors';
import { parseParam, parseSince as since } from './options';

interface StatsRow {
  group: string;
  hits: number;
  misses: number;
  hitRate: number;
  savedHours: number;
}

/** Time saved in the unit that reads: seconds under a minute, minutes under an hour, then hours. */
export const hours = (h: number) => {
  const seconds = h * 3600;
  if (seconds < 60) return `${seconds < 10 ? seconds.toFixed(1) : Math.round(seconds)} s`;
  if (seconds < 3600) return `${(seconds / 60).toFixed(seconds < 600 ? 1 : 0)} min`;
  return `${h.toFixed(1)} h`;
};

export function cacheCommand(connect: (command: Command) => Client): Command {
  const cache = new Command('cache').description('the task cache: savings, explanations, previews, invalidation');

  cache
    .command('stats')
    .description('hit rate, hits and hours saved, by module, workflow or team (the team owning the workflow, as in costs)')
    .option('--since <period>', 'period: 7d, 12h, 30m or an ISO 8601 date-time', since, since('7d'))
    .addOption(new Option('--by <grouping>', 'what to group by').choices(['module', 'workflow', 'team']).default('module'))
    .action(async (opts: { since: string; by: string }, command: Command) => {
      const { cacheStats } = await connect(command).request<{ cacheStats: StatsRow[] }>(
        `query ($since: DateTime!, $by: CacheGrouping) { cacheStats(since: $since, groupBy: $by) { group hits misses hitRate savedHours } }`,
        { since: opts.since, by: opts.by },
      );
      if (!cacheStats.length) return void console.log(`no cached tasks ended since ${opts.since}`);
      const rows = [
        [opts.by, 'hit rate', 'hits', 'misses', 'saved'],
        ...cacheStats.map((r) => [r.group, `${Math.round(r.hitRate * 100)}%`, String(r.hits), String(r.misses), hours(r.savedHours)]),
      ];
      const total = cacheStats.reduce((a, r) => ({ hits: a.hits + r.hits, misses: a.misses + r.misses, saved: a.saved + r.savedHours }), {
        hits: 0,
        misses: 0,
        saved: 0,
      });
      rows.push([
        'total',
        `${Math.round((total.hits / Math.max(1, total.hits + total.misses)) * 100)}%`,
        String(total.hits),
        String(total.misses),
        hours(total.saved),
      ]);
      const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
      for (const r of rows) console.log(r.map((c, i) => (i ? c.padStart(widths[i]!) : c.padEnd(widths[i]!))).join('  '));
    });

  cache
    .command('explain <task-or-run> [node]')
    .description('why a task hit or missed: a task id, or a run id and a node')
    .action(async (id: string, node: string | undefined, _opts: unknown, command: Command) => {
      const client = connect(command);
      let taskId = id;
      if (node) {
        const { run } = await client.request<{ run: { tasks: { id: string; node: string }[] } | null }>(
          `query ($id: ID!) { run(id: $id) { tasks { id node } } }`,
          { id },
        );
        const task = run?.tasks.find((t) => t.node === node);
        if (!task) throw new CliError(run ? `run ${id} has no node "${node}"; its nodes are: ${run.tasks.map((t) => t.node).join(', ')}` : `no run ${id}`);
        taskId = task.id;
      }
      const { cacheExplain: e } = await client.request<{
        cacheExplain: { hit: boolean; key: string | null; message: string; differences: { component: string; name: string | null; message: string }[] };
      }>(`query ($id: ID!) { cacheExplain(taskId: $id) { hit key message differences { component name message } } }`, { id: taskId });
      console.log(e.message);
      if (e.key) console.log(`key ${e.key}`);
      for (const d of e.differences) console.log(`  - ${d.message}`);
    });

  cache
    .command('preview <workflow>')
    .description('which tasks would be served from cache if the workflow started now; starts nothing')
    .option('-p, --param <key=value>', 'run parameter (repeatable); the value is parsed as JSON when it can be', parseParam)
    .addOption(new Option('--domain <domain>', 'the domain the run would work in (default: the workflow’s)').choices(domains))
    .option('--cache-namespace <name>', 'an experimentation run’s private cache namespace')
    .action(async (workflow: string, opts: { param?: Record<string, unknown>; domain?: string; cacheNamespace?: string }, command: Command) => {
      const { cachePreview } = await connect(command).request<{ cachePreview: { node: string; hit: boolean; reason: string; savedMs: number | null }[] }>(
        `query ($workflow: String!, $parameters: JSON, $domain: Domain, $ns: String) { cachePreview(workflow: $workflow, parameters: $parameters, domain: $domain, cacheNamespace: $ns) { node hit reason savedMs } }`,
        { workflow, parameters: opts.param ?? {}, domain: opts.domain ?? null, ns: opts.cacheNamespace ?? null },
      );
      const width = Math.max(...cachePreview.map((t) => t.node.length));
      for (const t of cachePreview)
        console.log(`${t.node.padEnd(width)}  ${t.hit ? 'hit ' : 'miss'}  ${t.reason}${t.savedMs ? ` (saves ${Math.round(t.savedMs)} ms)` : ''}`);
      console.log(`${cachePreview.filter((t) => t.hit).length} of ${cachePreview.length} tasks would be served from cache`);
    });

  cache
    .command('invalidate')
    .description('drop cache entries: of a module (ns/name), of one version (ns/name@version), or one by key')
    .option('--module <ref>', 'ns/name or ns/name@version')
    .option('--key <key>', 'one entry’s key')
    .action(async (opts: { module?: string; key?: string }, command: Command) => {
      const { invalidateCache } = await connect(command).request<{ invalidateCache: number }>(
        `mutation ($module: String, $key: String) { invalidateCache(module: $module, key: $key) }`,
        {
          module: opts.module ?? null,
          key: opts.key ?? null,
        },
      );
      console.log(`dropped ${invalidateCache} cache entr${invalidateCache === 1 ? 'y' : 'ies'}`);
    });

  return cache;
}
