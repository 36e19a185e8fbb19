// `atelier experiment list|rename|delete|restore|tag`: experiments from the terminal, as GraphQL calls of
// `experiments` and `updateExperiment` (whoever may change one: admins, its owning team's writing members, its creator
// when it has no team).
import { Command, InvalidArgumentError } from 'commander';
import type { Client } from './client';
import { collect, positiveInt } from './options';
import { table, tagPair } from './tracking';

interface ExperimentView {
  id: string;
  name: string;
  deletedAt: string | null;
  runCount: number;
  createdAt: string;
  createdBy: { name: string } | null;
  workflow: { name: string } | null;
  tags: { key: string; value: string }[];
}
const FIELDS = 'id name deletedAt runCount createdAt createdBy { name } workflow { name } tags { key value }';
const UPDATE = `mutation ($e: ID!, $name: String, $deleted: Boolean, $set: [RunTagInput!], $del: [String!]) {
  updateExperiment(experiment: $e, name: $name, deleted: $deleted, setTags: $set, deleteTags: $del) { ${FIELDS} } }`;

export function experimentCommand(connect: (command: Command) => Client): Command {
  const experiment = new Command('experiment').description('list, rename, delete, restore and tag experiments');
  const update = async (command: Command, ref: string, vars: Record<string, unknown>) =>
    (await connect(command).request<{ updateExperiment: ExperimentView }>(UPDATE, { e: ref, ...vars })).updateExperiment;

  experiment
    .command('list')
    .description('experiments by name, with their run counts and tags')
    .option('--deleted', 'list deleted ones too')
    .option('-n, --limit <n>', 'how many', positiveInt, 100)
    .action(async (opts: { deleted?: boolean; limit: number }, command: Command) => {
      const { experiments } = await connect(command).request<{ experiments: { edges: { node: ExperimentView }[] } }>(
        `query ($n: Int, $d: Boolean) { experiments(first: $n, includeDeleted: $d) { edges { node { ${FIELDS} } } } }`,
        { n: opts.limit, d: Boolean(opts.deleted) },
      );
      const found = experiments.edges.map((e) => e.node);
      if (!found.length) return void console.log('no experiments yet: a workflow’s first run makes its experiment (`atelier run start WORKFLOW`)');
      const rows = found.map((e) => [
        e.name + (e.deletedAt ? ' (deleted)' : ''),
        String(e.runCount),
        e.workflow ? `workflow ${e.workflow.name}` : (e.createdBy?.name ?? '-'),
        e.tags.map((t) => `${t.key}=${t.value}`).join(' '),
      ]);
      console.log(table([['EXPERIMENT', 'RUNS', 'OF', 'TAGS'], ...rows]));
    });

  experiment
    .command('rename <experiment> <new-name>')
    .description('rename an experiment (by name or id)')
    .action(async (ref: string, name: string, _opts: unknown, command: Command) => {
      const after = await update(command, ref, { name });
      console.log(`experiment ${ref} is now ${after.name}`);
    });

  for (const [verb, deleted, description] of [
    ['delete', true, 'delete an experiment: its runs are kept, new runs naming it are refused until it is restored'],
    ['restore', false, 'restore a deleted experiment'],
  ] as const) {
    experiment
      .command(`${verb} <experiment>`)
      .description(description)
      .action(async (ref: string, _opts: unknown, command: Command) => {
        const after = await update(command, ref, { deleted });
        console.log(`experiment ${after.name} ${deleted ? 'deleted' : 'restored'} (${after.runCount} run${after.runCount === 1 ? '' : 's'} in it)`);
      });
  }

  experiment
    .command('tag <experiment> [pairs...]')
    .description('set tags on an experiment (key=value…); --delete removes one')
    .option('-d, --delete <key>', 'remove this tag (repeatable)', collect)
    .action(async (ref: string, pairs: string[], opts: { delete?: string[] }, command: Command) => {
      const set = pairs.reduce((all, raw) => tagPair(raw, all), [] as { key: string; value: string }[]);
      if (!set.length && !opts.delete?.length) throw new InvalidArgumentError('give key=value pairs to set, or --delete KEY');
      const after = await update(command, ref, { set: set.length ? set : null, del: opts.delete?.length ? opts.delete : null });
      console.log(`experiment ${after.name}: ${after.tags.map((t) => `${t.key}=${t.value}`).join(' ') || 'no tags'}`);
    });

  return experiment;
}
