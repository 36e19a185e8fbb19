// `atelier run list|search|compare|tag|note`: experiment tracking from the terminal, as GraphQL calls of runs or
// searchRuns, compareRuns, setRunTags/deleteRunTag and setRunNote. The filter language is the README's ("Searching
// runs").
import { type Command, InvalidArgumentError } from 'commander';
import { closestName } from '../errors/did-you-mean';
import type { Condition, Field } from '../tracking/filter';
import { runStatuses } from '../vocabulary';
import type { Client } from './client';
import { collect, positiveInt, upperChoices } from './options';
import { searchAllPages } from './search-pages';
import { formatDuration, runLabel } from './watch-view';

interface ListedRun {
  id: string;
  status: string;
  createdAt: string;
  startedAt: string | null;
  finishedAt: string | null;
  workflow: { name: string } | null;
  workflowVersion: { version: number } | null;
}
const LISTED = 'id status createdAt startedAt finishedAt workflow { name } workflowVersion { version }';
const quoted = (v: string) => `'${v.replaceAll("'", "''")}'`;

interface FoundRun {
  id: string;
  status: string;
  name: string | null;
  createdAt: string;
  workflow: { name: string } | null;
  experiment: { name: string };
  tags: { key: string; value: string }[] | null;
}

type Value = number | string | null;
interface Cell {
  last: Value;
  min: Value;
  max: Value;
}
interface Comparison {
  runs: { id: string; name: string | null }[];
  missing: string[];
  params: { key: string; values: (string | null)[] }[];
  metrics: { name: string; values: (Cell | null)[] }[];
}

/** Columns padded to their widest cell, two spaces apart. */
export function table(rows: string[][]): string {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length)));
  return rows
    .map((r) =>
      r
        .map((cell, i) => (i === r.length - 1 ? cell : cell.padEnd(widths[i]!)))
        .join('  ')
        .trimEnd(),
    )
    .join('\n');
}

const shown = (v: Value | undefined): string => (v === null || v === undefined ? '-' : typeof v === 'number' ? String(Number(v.toPrecision(6))) : v);

/** One `key=value` argument added to those before it (commander's reducer for repeated pairs). */
export function tagPair(raw: string, previous: { key: string; value: string }[] = []) {
  const at = raw.indexOf('=');
  if (at < 1) throw new InvalidArgumentError(`expected key=value, got "${raw}"`);
  return [...previous, { key: raw.slice(0, at), value: raw.slice(at + 1) }];
}

export function addTrackingCommands(run: Command, clientOf: (command: Command) => Client): void {
  run
    .command('list')
    .description('recent runs, newest first; --filter and --order-by list through searchRuns (the README’s filter language)')
    .option('--workflow <name>', 'only runs of this workflow')
    .option('--status <status>', `only runs with this status (repeatable): ${runStatuses.join(', ')}`, upperChoices(runStatuses))
    .option('--filter <expr>', 'only runs matching this filter, e.g. "metrics.acc > 0.9 and tags.dataset = \'v2\'"')
    .option('--order-by <key>', 'order key, e.g. "metrics.acc DESC" (repeatable; default: newest first)', collect)
    .option('-n, --limit <n>', 'how many', positiveInt, 20)
    .action(async (opts: { workflow?: string; status?: string[]; filter?: string; orderBy?: string[]; limit: number }, command: Command) => {
      const client = clientOf(command);
      const status = opts.status;
      let found: ListedRun[];
      if (opts.filter !== undefined || opts.orderBy?.length) {
        // searchRuns answers only runs whose data the caller may read; the other options join the filter as clauses
        // (the filter stays first and, unless an `or` needs them, without parentheses: its error columns stay its own)
        const more = Boolean(opts.workflow || status?.length);
        const filter = opts.filter?.trim() ?? '';
        const clauses = [
          more && /\bor\b/i.test(filter) ? `(${filter})` : filter,
          opts.workflow ? `workflow = ${quoted(opts.workflow)}` : '',
          status?.length ? `status IN (${status.map(quoted).join(', ')})` : '',
        ].filter(Boolean);
        found = await searchAllPages<ListedRun>(client, LISTED, { filter: clauses.join(' and '), orderBy: opts.orderBy ?? [] }, opts.limit);
      } else {
        // Only the columns it prints, all metadata: a list never asks for run data (which a run of a domain none of
        // the caller's teams is granted would refuse, failing the whole list).
        const { runs } = await client.request<{ runs: { edges: { node: ListedRun }[] } }>(
          `query ($first: Int, $filter: RunFilter) { runs(first: $first, filter: $filter) { edges { node { ${LISTED} } } } }`,
          { first: opts.limit, filter: { workflow: opts.workflow ?? null, status: status ?? null } },
        );
        found = runs.edges.map((e) => e.node);
      }
      if (!found.length)
        console.log(
          opts.workflow || status?.length || opts.filter
            ? 'no runs match'
            : 'no runs yet: start one with `atelier run start WORKFLOW` (`atelier workflow list` shows the workflows)',
        );
      for (const r of found) {
        const took = r.finishedAt ? formatDuration(Date.parse(r.finishedAt) - Date.parse(r.startedAt ?? r.createdAt)) : '';
        console.log(`${r.id}  ${r.status.padEnd(9)}  ${runLabel(r).padEnd(24)}  ${r.createdAt}  ${took}`);
      }
    });

  run
    .command('search [filter]')
    .description('runs whose data you may read matching a filter, e.g. "metrics.accuracy > 0.9 and tags.dataset = \'v2\'" (see the README)')
    .option('-o, --order <key>', 'order key, e.g. "metrics.accuracy DESC" (repeatable; default: newest first)', collect)
    .option('-n, --first <n>', 'how many', positiveInt, 20)
    .option('--json', 'print the runs as JSON')
    .action(async (filter: string | undefined, opts: { order?: string[]; first: number; json?: boolean }, command: Command) => {
      const found = await searchAllPages<FoundRun>(
        clientOf(command),
        'id status name createdAt workflow { name } experiment { name } tags { key value }',
        { filter: filter ?? '', orderBy: opts.order ?? [] },
        opts.first,
      );
      if (opts.json) return console.log(JSON.stringify(found, null, 2));
      if (!found.length) return console.log('no runs match');
      // The metrics and params the filter and order name, as columns (the values the search compared), from one
      // compareRuns call, as the dashboard's runs list fills its picked columns.
      const columns = await searchedColumns(filter ?? '', opts.order ?? []);
      const cells = columns.length ? await columnCells(clientOf(command), found, columns) : new Map<string, string[]>();
      const rows = found.map((r) => [
        r.id,
        r.status,
        r.experiment.name,
        r.name ?? r.workflow?.name ?? '',
        r.createdAt,
        ...(cells.get(r.id) ?? columns.map(() => '-')),
        (r.tags ?? []).map((t) => `${t.key}=${t.value}`).join(' '),
      ]);
      console.log(table([['ID', 'STATUS', 'EXPERIMENT', 'NAME', 'CREATED', ...columns.map((c) => c.label), 'TAGS'], ...rows]));
    });

  run
    .command('compare <ids...>')
    .description('runs side by side: the params that differ, and each metric’s last, min and max')
    .option('-m, --metric <name>', 'only this metric (repeatable; default: all)', collect)
    .option('--all-params', 'every param, not only those that differ')
    .option('--json', 'print the comparison as JSON')
    .action(async (ids: string[], opts: { metric?: string[]; allParams?: boolean; json?: boolean }, command: Command) => {
      const { compareRuns: c } = await clientOf(command).request<{ compareRuns: Comparison }>(
        `query ($ids: [ID!]!, $m: [String!], $all: Boolean) { compareRuns(ids: $ids, metrics: $m, allParams: $all, maxPoints: 2) {
          runs { id name } missing params { key values } metrics { name values { last min max } } } }`,
        { ids, m: opts.metric ?? null, all: Boolean(opts.allParams) },
      );
      // A metric asked for that no compared run reports is left out by the server: said here, with the names they do
      // report (a second, small query, only then), and a failure like a run not compared.
      const absent = c.runs.length ? (opts.metric ?? []).filter((name) => !c.metrics.some((m) => m.name === name)) : [];
      // A run not compared is a failure, also when others were (a script must not take a partial table for all of it).
      if (c.missing.length || absent.length) process.exitCode = 1;
      if (opts.json) return console.log(JSON.stringify(c, null, 2));
      for (const id of c.missing) console.error(`no run ${id} (or not one whose data you may read)`);
      if (absent.length) {
        const { compareRuns: all } = await clientOf(command).request<{ compareRuns: { metrics: { name: string }[] } }>(
          `query ($ids: [ID!]!) { compareRuns(ids: $ids, maxPoints: 2) { metrics { name } } }`,
          { ids: c.runs.map((r) => r.id) },
        );
        const reported = all.metrics.map((m) => m.name);
        for (const name of absent) {
          const meant = closestName(name, reported);
          console.error(
            `no compared run reports metric "${name}"${meant ? ` (did you mean "${meant}"?)` : ''}; they report: ${reported.join(', ') || 'no metrics'}`,
          );
        }
      }
      if (!c.runs.length) return;
      const header = ['RUN', ...c.runs.map((r) => r.name ?? r.id.slice(0, 8))];
      const rows: string[][] = [];
      for (const p of c.params) rows.push([`param ${p.key}`, ...p.values.map((v) => v ?? '-')]);
      for (const m of c.metrics)
        for (const which of ['last', 'min', 'max'] as const) rows.push([`${m.name} ${which}`, ...m.values.map((v) => shown(v?.[which]))]);
      if (!rows.length) rows.push(['(no params differ and no metrics)']);
      console.log(table([header, ...rows]));
    });

  run
    .command('tag <id> [pairs...]')
    .description('set tags on a run (key=value…), also after it ended; --delete removes one')
    .option('-d, --delete <key>', 'remove this tag (repeatable)', collect)
    .action(async (id: string, pairs: string[], opts: { delete?: string[] }, command: Command) => {
      const tags = pairs.reduce((all, raw) => tagPair(raw, all), [] as { key: string; value: string }[]);
      if (!tags.length && !opts.delete?.length) throw new InvalidArgumentError('give key=value pairs to set, or --delete KEY');
      const client = clientOf(command);
      // The tags it had, read first: deleteRunTag answers the same for a key the run has and for one it has not.
      const had = opts.delete?.length
        ? new Set(
            (
              await client.request<{ run: { tags: { key: string }[] | null } | null }>(`query ($id: ID!) { run(id: $id) { tags { key } } }`, { id })
            ).run?.tags?.map((t) => t.key),
          )
        : new Set<string>();
      if (tags.length) await client.request(`mutation ($id: ID!, $t: [RunTagInput!]!) { setRunTags(runId: $id, tags: $t) { id } }`, { id, t: tags });
      for (const t of tags) had.add(t.key);
      for (const key of opts.delete ?? [])
        await client.request(`mutation ($id: ID!, $k: String!) { deleteRunTag(runId: $id, key: $k) { id } }`, { id, k: key });
      const parts = [
        ...tags.map((t) => `set ${t.key}`),
        ...(opts.delete ?? []).map((k) => (had.has(k) ? `removed ${k}` : `no tag ${k} to remove (it has none by that key)`)),
      ];
      console.log(`run ${id}: ${parts.join(', ')}`);
    });

  run
    .command('note <id> <text>')
    .description('set a run’s note (an empty text clears it), also after it ended')
    .action(async (id: string, text: string, _opts: unknown, command: Command) => {
      await clientOf(command).request(`mutation ($id: ID!, $n: String!) { setRunNote(runId: $id, note: $n) { id } }`, { id, n: text });
      console.log(text ? `run ${id}: note set` : `run ${id}: note cleared`);
    });
}

type Column = { kind: 'metric'; name: string; aggregate: 'last' | 'min' | 'max'; label: string } | { kind: 'param'; name: string; label: string };

/** Most columns `run search` adds for the metrics and params its filter and order name. */
const MAX_SEARCH_COLUMNS = 6;

/**
 * The metrics and params a search names, in order of appearance (the server has already accepted the filter). The
 * parser (chevrotain, with lodash) is loaded here only: at the CLI's start it cost ~90 ms of every command's CPU.
 */
export async function searchedColumns(filter: string, order: readonly string[]): Promise<Column[]> {
  const { parseFilter, parseOrderKey } = await import('../tracking/filter');
  const fields: Field[] = [];
  const walk = (c: Condition | null) => {
    if (!c) return;
    if ('left' in c) {
      walk(c.left);
      walk(c.right);
    } else fields.push(c.field);
  };
  try {
    walk(parseFilter(filter));
    for (const [i, key] of order.entries()) fields.push(parseOrderKey(key, i).field);
  } catch {
    return []; // the server's parser is the judge; without columns the table is still right
  }
  const columns = new Map<string, Column>();
  for (const f of fields) {
    if (f.kind === 'metric') {
      const label = `metrics.${f.name}${f.aggregate === 'last' ? '' : `.${f.aggregate}`}`;
      columns.set(label, { kind: 'metric', name: f.name, aggregate: f.aggregate, label });
    } else if (f.kind === 'param') columns.set(`params.${f.name}`, { kind: 'param', name: f.name, label: `params.${f.name}` });
  }
  return [...columns.values()].slice(0, MAX_SEARCH_COLUMNS);
}

/** Each found run's cells for `columns` (at most the first 100 runs: compareRuns' limit; the rest show '-'). */
async function columnCells(client: Client, found: readonly { id: string }[], columns: readonly Column[]): Promise<Map<string, string[]>> {
  const metrics = [...new Set(columns.flatMap((c) => (c.kind === 'metric' ? [c.name] : [])))];
  const { compareRuns: c } = await client.request<{ compareRuns: Comparison }>(
    `query ($ids: [ID!]!, $m: [String!]) { compareRuns(ids: $ids, metrics: $m, allParams: true, maxPoints: 2) {
      runs { id name } missing params { key values } metrics { name values { last min max } } } }`,
    { ids: found.slice(0, 100).map((r) => r.id), m: metrics },
  );
  const out = new Map<string, string[]>();
  for (const [i, run] of c.runs.entries())
    out.set(
      run.id,
      columns.map((col) =>
        col.kind === 'metric'
          ? shown(c.metrics.find((m) => m.name === col.name)?.values[i]?.[col.aggregate])
          : (c.params.find((p) => p.key === col.name)?.values[i] ?? '-'),
      ),
    );
  return out;
}
