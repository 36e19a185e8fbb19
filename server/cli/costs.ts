// `atelier costs`: execution hours and GPU hours of the tasks that executed, by team, workflow or model, as a table.
import { Command, Option } from 'commander';
import { hours } from './cache';
import type { Client } from './client';
import { parseSince as since } from './options';

interface CostRow {
  group: string;
  tasks: number;
  executionHours: number;
  gpuHours: number;
}

export function costsCommand(connect: (command: Command) => Client): Command {
  return new Command('costs')
    .description('execution time and GPU time (execution × GPUs) of executed tasks, by team, workflow or model; your teams only, all for an admin')
    .option('--since <period>', 'period: 7d, 12h, 30m or an ISO 8601 date-time', since, since('7d'))
    .addOption(new Option('--by <grouping>', 'what to group by').choices(['team', 'workflow', 'model']).default('team'))
    .action(async (opts: { since: string; by: string }, command: Command) => {
      const { costs } = await connect(command).request<{ costs: CostRow[] }>(
        `query ($since: DateTime!, $by: CostGrouping) { costs(since: $since, groupBy: $by) { group tasks executionHours gpuHours } }`,
        { since: opts.since, by: opts.by },
      );
      if (!costs.length) return void console.log(`no executed tasks of your teams ended since ${opts.since}`);
      const total = costs.reduce((a, r) => ({ tasks: a.tasks + r.tasks, exec: a.exec + r.executionHours, gpu: a.gpu + r.gpuHours }), {
        tasks: 0,
        exec: 0,
        gpu: 0,
      });
      const rows = [
        [opts.by, 'tasks', 'execution', 'GPU time'],
        ...costs.map((r) => [r.group, String(r.tasks), hours(r.executionHours), hours(r.gpuHours)]),
        // a task of two models counts under both: a total by model would count it twice
        ...(opts.by === 'model' ? [] : [['total', String(total.tasks), hours(total.exec), hours(total.gpu)]]),
      ];
      const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
      for (const r of rows) console.log(r.map((c, i) => (i ? c.padStart(widths[i]!) : c.padEnd(widths[i]!))).join('  '));
    });
}
