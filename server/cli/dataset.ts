// `atelier dataset …`: datasets and their column labels, new versions, previews at the caller's clearance, and the
// interactive catalog.
import { readFile } from 'node:fs/promises';
import { Argument, Command, InvalidArgumentError, Option } from 'commander';
import { domains, levels } from '../vocabulary';
import type { Client } from './client';
import { CliError } from './errors';
import { type ColumnInput, formatLabel, hinted, LABEL_HINTS, type LabelView, parseCategories, parseColumnSpec, parseLevel, print } from './labels';
import { commaList, formatTable, positiveInt, splitAssignment } from './options';

type Connect = (command: Command) => Client;

const collectColumn = (raw: string, previous: ColumnInput[] = []) => [...previous, parseColumnSpec(raw)];

/** `column=value`, the value parsed as JSON when it can be (`id=3` is the number 3, `id='"3"'` the string). */
function collectWhere(raw: string, previous: { column: string; equals: unknown }[] = []) {
  const [column, equals] = splitAssignment(raw, 'column');
  return [...previous, { column, equals }];
}

function parseOrder(raw: string): { column: string; descending: boolean } {
  const [column, direction = 'asc', ...rest] = raw.split(':');
  if (!column || rest.length || !['asc', 'desc'].includes(direction.toLowerCase()))
    throw new InvalidArgumentError(`expected column or column:desc, got "${raw}"`);
  return { column, descending: direction.toLowerCase() === 'desc' };
}

function previewLimit(raw: string): number {
  const n = positiveInt(raw);
  if (n > 100) throw new InvalidArgumentError('a preview shows at most 100 rows or groups');
  return n;
}
const cell = (v: unknown) => (typeof v === 'string' ? v : v === undefined ? '' : JSON.stringify(v));

interface ColumnView {
  name: string;
  type: string;
  label: LabelView;
  computedLabel: LabelView | null;
  needsClassification: boolean;
}
interface CatalogView {
  published: boolean;
  publishedAt: string | null;
  publishedBy: { name: string } | null;
  blockers: string[];
}
interface DatasetView {
  fullName: string;
  domain: string;
  description: string;
  createdAt: string;
  columns: ColumnView[];
  versions: { version: number; digest: string; createdAt: string }[];
  catalog: CatalogView;
  freshness: { expectedEvery: string; policy: string; maxWait: string; dueAt: string; late: boolean; lateSince: string | null } | null;
}
const CATALOG = 'catalog { published publishedAt publishedBy { name } blockers }';
const DATASET = `fullName domain description createdAt columns { name type label { level categories } computedLabel { level categories } needsClassification } versions { version digest createdAt } ${CATALOG} freshness { expectedEvery policy maxWait dueAt late lateSince }`;
function describeCatalog(name: string, c: CatalogView): string {
  if (c.published) return `${name} is in the interactive catalog (published by ${c.publishedBy?.name ?? '-'} at ${c.publishedAt})`;
  return `${name} is not in the interactive catalog`;
}

interface PartitionInput {
  name: string;
  digest: string;
  rows: number | null;
}

/** `NAME@sha256:HEX[@ROWS]` (a name may hold "=", as in day=2026-01-01); the server checks the digest. */
function collectPartition(raw: string, previous: PartitionInput[] = []): PartitionInput[] {
  const m = /^(.+)@(sha256:[^@]*)(?:@(\d+))?$/.exec(raw);
  if (!m) throw new InvalidArgumentError(`expected NAME@sha256:HEX or NAME@sha256:HEX@ROWS, e.g. day=2026-01-01@sha256:…@1000; got "${raw}"`);
  if (previous.some((p) => p.name === m[1])) throw new InvalidArgumentError(`partition "${m[1]}" is given twice`);
  return [...previous, { name: m[1]!, digest: m[2]!, rows: m[3] === undefined ? null : Number(m[3]) }];
}

interface VersionOptions {
  column: ColumnInput[];
  sample?: string;
  profile?: string;
  partition?: PartitionInput[];
}

async function readJsonFile(file: string): Promise<unknown> {
  const text = await readFile(file, 'utf8').catch((error: NodeJS.ErrnoException) => {
    throw new CliError(`cannot read ${file}: ${error.code === 'ENOENT' ? 'no such file' : error.message}`);
  });
  try {
    return JSON.parse(text);
  } catch (error) {
    throw new CliError(`${file} is not JSON: ${(error as Error).message}`);
  }
}

/** Checks a version's columns (each once) and reads its sample (a JSON list of rows) and profile files, if given. */
async function readVersion(opts: VersionOptions): Promise<{ sample: unknown[] | undefined; profile: unknown }> {
  const seen = new Set<string>();
  for (const c of opts.column) {
    if (seen.has(c.name)) throw new CliError(`column "${c.name}" is given twice`);
    seen.add(c.name);
  }
  const sample = opts.sample === undefined ? undefined : await readJsonFile(opts.sample);
  if (sample !== undefined && !Array.isArray(sample)) throw new CliError(`${opts.sample} must hold a JSON list of rows, e.g. [{"id": 1, "country": "FR"}]`);
  const profile = opts.profile === undefined ? null : await readJsonFile(opts.profile);
  return { sample, profile };
}

/** The options a version takes in the API beside its columns and digest (createDataset and addDatasetVersion alike). */
function versionOptions(command: Command): Command {
  return command
    .option('--sample <file.json>', 'up to 1,000 sample rows (a JSON list of objects keyed by column) for previews')
    .option('--profile <file.json>', 'per column, the version’s profile (docs/drift.md); left out, it is computed from the sample')
    .option(
      '--partition <name@sha256:hex[@rows]>',
      'a named partition (a file or prefix of the data) a batch workflow maps over (repeatable), e.g. day=2026-01-01@sha256:…@1000',
      collectPartition,
    );
}

export function datasetCommand(connect: Connect): Command {
  const dataset = new Command('dataset').description('datasets: columns and their labels, previews at your clearance, the interactive catalog');

  dataset
    .command('list')
    .description('datasets with their domain, columns, how many need classification and whether they are in the catalog')
    .addOption(new Option('--domain <domain>', 'only datasets of this domain').choices(domains))
    .option('--catalog', 'only datasets published to the interactive catalog')
    .option('--json', 'print as JSON')
    .action(async (opts: { domain?: string; catalog?: boolean; json?: boolean }, cmd: Command) => {
      const { datasets } = await connect(cmd).request<{
        datasets: { fullName: string; domain: string; columns: { needsClassification: boolean }[]; catalog: { published: boolean } }[];
      }>(`query ($d: Domain, $c: Boolean) { datasets(domain: $d, catalog: $c) { fullName domain columns { needsClassification } catalog { published } } }`, {
        d: opts.domain ?? null,
        c: opts.catalog ? true : null,
      });
      if (opts.json) return console.log(JSON.stringify(datasets, null, 2));
      if (!datasets.length)
        return console.log(
          opts.catalog || opts.domain ? 'no datasets match' : 'no datasets: register one with `atelier dataset create NAME --domain D --column name:type …`',
        );
      print(
        formatTable(
          ['NAME', 'DOMAIN', 'COLUMNS', 'UNCLASSIFIED', 'CATALOG'],
          datasets.map((d) => {
            const unclassified = d.columns.filter((c) => c.needsClassification).length;
            return [d.fullName, d.domain, String(d.columns.length), unclassified ? String(unclassified) : '-', d.catalog.published ? 'published' : '-'];
          }),
        ),
      );
    });

  dataset
    .command('show <name>')
    .description('a dataset’s columns (type, label, computed label; UNCLASSIFIED flagged), versions, and catalog state with what blocks it')
    .option('--json', 'print as JSON')
    .action(async (name: string, opts: { json?: boolean }, cmd: Command) => {
      const { dataset: d } = await connect(cmd).request<{ dataset: DatasetView | null }>(`query ($n: String!) { dataset(name: $n) { ${DATASET} } }`, {
        n: name,
      });
      if (!d) throw new CliError(`no dataset ${name}; list them with \`atelier dataset list\``);
      if (opts.json) return console.log(JSON.stringify(d, null, 2));
      console.log(`${d.fullName}  (${d.domain})${d.description ? `\n${d.description}` : ''}\n\ncolumns:`);
      const rows = d.columns.map((c) => [
        c.name,
        c.type,
        formatLabel(c.label),
        c.computedLabel ? formatLabel(c.computedLabel) : '-',
        c.needsClassification ? 'needs classification' : '',
      ]);
      print(formatTable(['NAME', 'TYPE', 'LABEL', 'COMPUTED', ''], rows).map((l) => `  ${l}`));
      const unclassified = d.columns.filter((c) => c.needsClassification).length;
      if (unclassified)
        console.log(
          `  ${unclassified} column${unclassified === 1 ? '' : 's'} UNCLASSIFIED: classify with \`atelier dataset label ${d.fullName} COLUMN LEVEL\``,
        );
      console.log('\nversions:');
      for (const v of d.versions) console.log(`  ${String(v.version).padEnd(4)} ${v.digest}  ${v.createdAt}`);
      const f = d.freshness;
      if (f)
        console.log(
          `\nfreshness: a new version every ${f.expectedEvery} (runs reading it while late: ${f.policy}${f.policy === 'WAIT' ? `, up to ${f.maxWait}` : ''}); ${f.late ? `LATE since ${f.lateSince}` : `next due ${f.dueAt}`}`,
        );
      console.log(`\n${describeCatalog(d.fullName, d.catalog)}`);
      if (d.catalog.blockers.length) {
        console.log(d.catalog.published ? 'now outside the catalog’s ceiling:' : 'blocked from publishing by:');
        for (const b of d.catalog.blockers) console.log(`  - ${b}`);
        console.log(
          `(classify or raise: \`atelier dataset label ${d.fullName} COLUMN LEVEL\`; lower: \`atelier declassify request ${d.fullName} COLUMN LEVEL --reason …\`)`,
        );
      } else if (!d.catalog.published) console.log(`nothing blocks it: \`atelier dataset publish ${d.fullName}\``);
    });

  const create = dataset
    .command('create <name>')
    .description('register a dataset (namespace/name, in a namespace your team owns) with its first version’s columns')
    .addOption(new Option('--domain <domain>', 'the domain it belongs to').choices(domains).makeOptionMandatory())
    .requiredOption(
      '--column <name:type[:LEVEL[:CAT,CAT]]>',
      'a column (repeatable), e.g. email:string:CONFIDENTIAL:PII; without a level it is UNCLASSIFIED',
      collectColumn,
    )
    .requiredOption('--digest <sha256:hex>', 'content digest of the data, sha256:<64 hex digits>')
    .option('--description <text>');
  versionOptions(create).action(async (name: string, opts: VersionOptions & { domain: string; digest: string; description?: string }, cmd: Command) => {
    const { sample, profile } = await readVersion(opts);
    const partitions = opts.partition ?? [];
    const { createDataset: d } = await connect(cmd).request<{ createDataset: { fullName: string; columns: { needsClassification: boolean }[] } }>(
      `mutation ($n: String!, $d: Domain!, $c: [DatasetColumnInput!]!, $digest: String!, $s: JSON, $desc: String, $p: [DatasetPartitionInput!], $profile: JSON) {
          createDataset(name: $n, domain: $d, columns: $c, digest: $digest, sample: $s, description: $desc, partitions: $p, profile: $profile) { fullName columns { needsClassification } }
        }`,
      {
        n: name,
        d: opts.domain,
        c: opts.column,
        digest: opts.digest,
        s: sample ?? null,
        desc: opts.description ?? null,
        p: partitions.length ? partitions : null,
        profile,
      },
    );
    const unclassified = d.columns.filter((c) => c.needsClassification).length;
    const extras = [sample ? `${sample.length} sample rows` : '', partitions.length ? `${partitions.length} partitions` : ''].filter(Boolean);
    console.log(`created dataset ${d.fullName} (${[opts.domain, `${d.columns.length} columns`, ...extras].join(', ')})`);
    if (unclassified)
      console.log(`${unclassified} column${unclassified === 1 ? '' : 's'} UNCLASSIFIED: classify with \`atelier dataset label ${d.fullName} COLUMN LEVEL\``);
  });

  const version = dataset
    .command('version <name>')
    .description('record a new version (snapshot) of a dataset: kept columns keep their labels, new ones start UNCLASSIFIED unless given a level')
    .requiredOption('--column <name:type[:LEVEL[:CAT,CAT]]>', 'a column of the new version (repeatable)', collectColumn)
    .requiredOption('--digest <sha256:hex>', 'content digest of the new data');
  versionOptions(version).action(async (name: string, opts: VersionOptions & { digest: string }, cmd: Command) => {
    const { sample, profile } = await readVersion(opts);
    const { addDatasetVersion: d } = await connect(cmd).request<{
      addDatasetVersion: {
        fullName: string;
        versions: { version: number }[];
        columns: { needsClassification: boolean }[];
        catalog: { published: boolean; blockers: string[] };
      };
    }>(
      `mutation ($n: String!, $c: [DatasetColumnInput!]!, $digest: String!, $s: JSON, $p: [DatasetPartitionInput!], $profile: JSON) {
          addDatasetVersion(name: $n, columns: $c, digest: $digest, sample: $s, partitions: $p, profile: $profile) { fullName versions { version } columns { needsClassification } catalog { published blockers } }
        }`,
      { n: name, c: opts.column, digest: opts.digest, s: sample ?? null, p: opts.partition?.length ? opts.partition : null, profile },
    );
    console.log(`${d.fullName} is at version ${d.versions[0]?.version ?? 1}`);
    const unclassified = d.columns.filter((c) => c.needsClassification).length;
    if (unclassified)
      console.log(`${unclassified} column${unclassified === 1 ? '' : 's'} UNCLASSIFIED: classify with \`atelier dataset label ${d.fullName} COLUMN LEVEL\``);
    if (!d.catalog.published && d.catalog.blockers.length) console.log(`not in the catalog: ${d.catalog.blockers.join('; ')}`);
  });

  dataset
    .command('freshness <name>')
    .description('how often a new version is expected, and what runs reading it do while it is late; without --every: none')
    .option('--every <interval>', 'a new version every interval, 1m to 366d (units s, m, h, d, w)')
    .addOption(
      new Option('--policy <policy>', 'runs reading it while it is late: ignore, fail, or wait (up to --max-wait)').choices(['ignore', 'fail', 'wait']),
    )
    .option('--max-wait <interval>', 'with --policy wait: how long a task waits before it fails (default 1h)')
    .action(async (name: string, opts: { every?: string; policy?: string; maxWait?: string }, cmd: Command) => {
      const { setDatasetFreshness: d } = await connect(cmd).request<{
        setDatasetFreshness: { fullName: string; freshness: { expectedEvery: string; policy: string; dueAt: string } | null };
      }>(
        `mutation ($d: String!, $e: String, $p: FreshnessPolicy, $w: String) {
          setDatasetFreshness(dataset: $d, expectedEvery: $e, policy: $p, maxWait: $w) { fullName freshness { expectedEvery policy dueAt } }
        }`,
        { d: name, e: opts.every ?? null, p: opts.policy?.toUpperCase() ?? null, w: opts.maxWait ?? null },
      );
      const f = d.freshness;
      console.log(f ? `${d.fullName}: a new version every ${f.expectedEvery} (${f.policy}), next due ${f.dueAt}` : `${d.fullName}: no freshness expectation`);
    });

  dataset
    .command('label <name> <column>')
    .addArgument(new Argument('<level>', levels.join(' < ')).argParser((raw) => parseLevel(raw, 'level')))
    .description('classify a column or raise its label (lowering one is `atelier declassify request`)')
    .option('--categories <A,B>', 'categories, e.g. PII,UGC (the label’s whole set: give those it has too)', (raw) => parseCategories(raw, '--categories'))
    .option('--reason <text>', 'why, for the audit log')
    .action(async (name: string, column: string, level: string, opts: { categories?: string[]; reason?: string }, cmd: Command) => {
      const { setColumnLabel } = await hinted(
        connect(cmd).request<{ setColumnLabel: LabelView }>(
          `mutation ($d: String!, $c: String!, $l: ClassificationLabelInput!, $r: String) { setColumnLabel(dataset: $d, column: $c, label: $l, reason: $r) { level categories } }`,
          { d: name, c: column, l: { level, categories: opts.categories ?? [] }, r: opts.reason ?? null },
        ),
        LABEL_HINTS,
      );
      console.log(`${name}.${column} is now ${formatLabel(setColumnLabel)}`);
    });

  dataset
    .command('preview <name>')
    .description('sample rows (or counts per group) with only the columns your clearance admits; withheld ones are listed below')
    .option('--columns <a,b>', 'only these columns', commaList)
    .option('--where <column=value>', 'only rows where the column equals the value, parsed as JSON when it can be (repeatable)', collectWhere)
    .option('--order-by <column[:desc]>', 'sort by a column (with --group-by: a grouped one)', parseOrder)
    .option('--group-by <a,b>', 'count rows per distinct value of these columns instead', commaList)
    .option('-n, --limit <n>', 'most rows or groups, 1 to 100', previewLimit, 20)
    .option('--json', 'print as JSON')
    .action(
      async (
        name: string,
        opts: {
          columns?: string[];
          where?: { column: string; equals: unknown }[];
          orderBy?: { column: string; descending: boolean };
          groupBy?: string[];
          limit: number;
          json?: boolean;
        },
        cmd: Command,
      ) => {
        const { datasetPreview: p } = await hinted(
          connect(cmd).request<{
            datasetPreview: {
              columns: string[];
              withheld: string[];
              rows: Record<string, unknown>[];
              groups: { key: Record<string, unknown>; count: number }[] | null;
            };
          }>(
            `query ($n: String!, $c: [String!], $w: [DatasetPreviewFilter!], $o: DatasetPreviewOrder, $g: [String!], $l: Int) {
              datasetPreview(name: $n, columns: $c, where: $w, orderBy: $o, groupBy: $g, limit: $l) { columns withheld rows groups { key count } }
            }`,
            { n: name, c: opts.columns ?? null, w: opts.where ?? null, o: opts.orderBy ?? null, g: opts.groupBy ?? null, l: opts.limit },
          ),
          {
            FORBIDDEN: `\`atelier dataset show ${name}\` shows each column’s label; filter, sort and group only on columns the preview shows you`,
            NOT_FOUND: 'list datasets with `atelier dataset list`',
          },
        );
        if (opts.json) return console.log(JSON.stringify(p, null, 2));
        if (p.groups) {
          const keys = opts.groupBy ?? [];
          if (!p.groups.length) console.log('no rows');
          else
            print(
              formatTable(
                [...keys, 'COUNT'],
                p.groups.map((g) => [...keys.map((k) => cell(g.key[k])), String(g.count)]),
              ),
            );
        } else if (!p.columns.length) console.log('no column is readable at your clearance');
        else if (!p.rows.length) console.log(`no rows${opts.where ? ' match' : ' (no sample was given with the dataset)'}`);
        else
          print(
            formatTable(
              p.columns,
              p.rows.map((r) => p.columns.map((c) => cell(r[c]))),
            ),
          );
        if (p.withheld.length) console.log(`\nwithheld (not readable at your clearance): ${p.withheld.join(', ')}`);
      },
    );

  dataset
    .command('publish <name>')
    .description('put a dataset in the interactive catalog; refused, naming every column, while one is UNCLASSIFIED or beyond the catalog’s ceiling')
    .action(async (name: string, _opts: unknown, cmd: Command) => {
      const { publishDatasetToCatalog } = await hinted(
        connect(cmd).request<{ publishDatasetToCatalog: { catalog: CatalogView } }>(
          `mutation ($n: String!) { publishDatasetToCatalog(name: $n) { ${CATALOG} } }`,
          { n: name },
        ),
        {
          FORBIDDEN: `classify with \`atelier dataset label ${name} COLUMN LEVEL\`; lower a label with \`atelier declassify request ${name} COLUMN LEVEL --reason …\``,
        },
      );
      console.log(describeCatalog(name, publishDatasetToCatalog.catalog));
    });

  dataset
    .command('withdraw <name>')
    .description('take a dataset out of the interactive catalog')
    .option('--reason <text>', 'why, for the audit log')
    .action(async (name: string, opts: { reason?: string }, cmd: Command) => {
      await connect(cmd).request(`mutation ($n: String!, $r: String) { withdrawDatasetFromCatalog(name: $n, reason: $r) { id } }`, {
        n: name,
        r: opts.reason ?? null,
      });
      console.log(`${name} is not in the interactive catalog`);
    });

  return dataset;
}
