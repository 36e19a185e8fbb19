// `atelier dataset …`, `atelier declassify …` and `atelier audit`: datasets and their column labels, previews at
// the caller's clearance, the interactive catalog, declassification requests and the audit log.
import { readFile } from 'node:fs/promises';
import { Argument, Command, InvalidArgumentError, Option } from 'commander';
import { domains, levels } from '../vocabulary';
import type { Client } from './client';
import { ApiError, CliError } from './errors';
import { commaList, formatTable, parseSince, positiveInt, splitAssignment } from './options';

type Connect = (command: Command) => Client;

const LEVELS = levels;
const DOMAINS = [...domains];
const categoryRe = /^[A-Z][A-Z0-9_]{0,63}$/;

interface LabelView {
  level: string;
  categories: string[];
}
interface LabelInput {
  level: string;
  categories: string[];
}
interface ColumnInput {
  name: string;
  type: string;
  label?: LabelInput;
}

/** As the server writes labels: `LEVEL{CAT,CAT}`. */
const formatLabel = (l: LabelView) => (l.categories.length ? `${l.level}{${l.categories.join(',')}}` : l.level);

function parseLevel(raw: string, what: string): string {
  const level = raw.trim().toUpperCase();
  if (!(LEVELS as readonly string[]).includes(level)) throw new InvalidArgumentError(`${what}: "${raw}" is not a level; use ${LEVELS.join(', ')}`);
  return level;
}

function parseCategories(raw: string, what: string): string[] {
  const categories = commaList(raw).map((c) => c.toUpperCase());
  const bad = categories.filter((c) => !categoryRe.test(c));
  if (bad.length) throw new InvalidArgumentError(`${what}: categories are words such as PII, UGC or CUSTOMER_DATA, not ${bad.map((b) => `"${b}"`).join(', ')}`);
  return categories;
}

/** `name:type[:LEVEL[:CAT,CAT]]`, e.g. `email:string:CONFIDENTIAL:PII`; without a level the column stays UNCLASSIFIED. */
export function parseColumnSpec(raw: string): ColumnInput {
  const parts = raw.split(':').map((p) => p.trim());
  const usage = 'expected name:type[:LEVEL[:CAT,CAT]], e.g. email:string:CONFIDENTIAL:PII';
  if (parts.length < 2) throw new InvalidArgumentError(`${usage}; "${raw}" has no type`);
  if (parts.length > 4) throw new InvalidArgumentError(`${usage}; "${raw}" has ${parts.length} parts`);
  const [name, type, level, categories] = parts as [string, string, string?, string?];
  if (!name) throw new InvalidArgumentError(`${usage}; "${raw}" has no column name`);
  if (!type) throw new InvalidArgumentError(`column "${name}" has no type: ${usage}`);
  if (level === undefined) return { name, type };
  if (!level) throw new InvalidArgumentError(`column "${name}": categories need a level before them (${usage}); leave both out for UNCLASSIFIED`);
  return { name, type, label: { level: parseLevel(level, `column "${name}"`), categories: categories === undefined ? [] : parseCategories(categories, `column "${name}"`) } };
}

const collectColumn = (raw: string, previous: ColumnInput[] = []) => [...previous, parseColumnSpec(raw)];

/** `column=value`, the value parsed as JSON when it can be (`id=3` is the number 3, `id='"3"'` the string). */
function collectWhere(raw: string, previous: { column: string; equals: unknown }[] = []) {
  const [column, equals] = splitAssignment(raw, 'column');
  return [...previous, { column, equals }];
}

function parseOrder(raw: string): { column: string; descending: boolean } {
  const [column, direction = 'asc', ...rest] = raw.split(':');
  if (!column || rest.length || !['asc', 'desc'].includes(direction.toLowerCase())) throw new InvalidArgumentError(`expected column or column:desc, got "${raw}"`);
  return { column, descending: direction.toLowerCase() === 'desc' };
}

function previewLimit(raw: string): number {
  const n = positiveInt(raw);
  if (n > 100) throw new InvalidArgumentError('a preview shows at most 100 rows or groups');
  return n;
}

/** Adds a hint naming the CLI command for what an API error message calls by its mutation's name. */
async function hinted<T>(request: Promise<T>, hints: Partial<Record<string, string>>): Promise<T> {
  try {
    return await request;
  } catch (error) {
    const hint = error instanceof ApiError && !error.hint ? hints[error.code] : undefined;
    if (!hint) throw error;
    const { message, code, details } = error as ApiError;
    throw new ApiError(message, code, details, hint);
  }
}

const cell = (v: unknown) => (typeof v === 'string' ? v : v === undefined ? '' : JSON.stringify(v));
const print = (lines: string[]) => lines.forEach((l) => console.log(l));

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
}
const CATALOG = 'catalog { published publishedAt publishedBy { name } blockers }';
const DATASET = `fullName domain description createdAt columns { name type label { level categories } computedLabel { level categories } needsClassification } versions { version digest createdAt } ${CATALOG}`;

const LABEL_HINTS = {
  NOT_FOUND: 'list datasets with `atelier dataset list`, and a dataset’s columns with `atelier dataset show NAME`',
  FORBIDDEN: 'a label only goes up with `atelier dataset label`; to lower one, `atelier declassify request NAME COLUMN LEVEL --reason …` for someone else to approve',
};

function describeCatalog(name: string, c: CatalogView): string {
  if (c.published) return `${name} is in the interactive catalog (published by ${c.publishedBy?.name ?? '-'} at ${c.publishedAt})`;
  return `${name} is not in the interactive catalog`;
}

/** Checks a version's columns (each once) and reads its sample file: a JSON list of rows, or undefined. */
async function readVersion(opts: { column: ColumnInput[]; sample?: string }): Promise<unknown[] | undefined> {
  const seen = new Set<string>();
  for (const c of opts.column) {
    if (seen.has(c.name)) throw new CliError(`column "${c.name}" is given twice`);
    seen.add(c.name);
  }
  if (!opts.sample) return undefined;
  const text = await readFile(opts.sample, 'utf8').catch((error: NodeJS.ErrnoException) => {
    throw new CliError(`cannot read ${opts.sample}: ${error.code === 'ENOENT' ? 'no such file' : error.message}`);
  });
  let sample: unknown;
  try {
    sample = JSON.parse(text);
  } catch (error) {
    throw new CliError(`${opts.sample} is not JSON: ${(error as Error).message}`);
  }
  if (!Array.isArray(sample)) throw new CliError(`${opts.sample} must hold a JSON list of rows, e.g. [{"id": 1, "country": "FR"}]`);
  return sample;
}

export function datasetCommand(connect: Connect): Command {
  const dataset = new Command('dataset').description('datasets: columns and their labels, previews at your clearance, the interactive catalog');

  dataset
    .command('list')
    .description('datasets with their domain, columns, how many need classification and whether they are in the catalog')
    .addOption(new Option('--domain <domain>', 'only datasets of this domain').choices(DOMAINS))
    .option('--catalog', 'only datasets published to the interactive catalog')
    .option('--json', 'print as JSON')
    .action(async (opts: { domain?: string; catalog?: boolean; json?: boolean }, cmd: Command) => {
      const { datasets } = await connect(cmd).request<{ datasets: { fullName: string; domain: string; columns: { needsClassification: boolean }[]; catalog: { published: boolean } }[] }>(
        `query ($d: Domain, $c: Boolean) { datasets(domain: $d, catalog: $c) { fullName domain columns { needsClassification } catalog { published } } }`,
        { d: opts.domain ?? null, c: opts.catalog ? true : null },
      );
      if (opts.json) return console.log(JSON.stringify(datasets, null, 2));
      if (!datasets.length) return console.log(opts.catalog || opts.domain ? 'no datasets match' : 'no datasets: register one with `atelier dataset create NAME --domain D --column name:type …`');
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
      const { dataset: d } = await connect(cmd).request<{ dataset: DatasetView | null }>(`query ($n: String!) { dataset(name: $n) { ${DATASET} } }`, { n: name });
      if (!d) throw new CliError(`no dataset ${name}; list them with \`atelier dataset list\``);
      if (opts.json) return console.log(JSON.stringify(d, null, 2));
      console.log(`${d.fullName}  (${d.domain})${d.description ? `\n${d.description}` : ''}\n\ncolumns:`);
      const rows = d.columns.map((c) => [c.name, c.type, formatLabel(c.label), c.computedLabel ? formatLabel(c.computedLabel) : '-', c.needsClassification ? 'needs classification' : '']);
      print(formatTable(['NAME', 'TYPE', 'LABEL', 'COMPUTED', ''], rows).map((l) => `  ${l}`));
      const unclassified = d.columns.filter((c) => c.needsClassification).length;
      if (unclassified) console.log(`  ${unclassified} column${unclassified === 1 ? '' : 's'} UNCLASSIFIED: classify with \`atelier dataset label ${d.fullName} COLUMN LEVEL\``);
      console.log('\nversions:');
      for (const v of d.versions) console.log(`  ${String(v.version).padEnd(4)} ${v.digest}  ${v.createdAt}`);
      console.log(`\n${describeCatalog(d.fullName, d.catalog)}`);
      if (d.catalog.blockers.length) {
        console.log(d.catalog.published ? 'now outside the catalog’s ceiling:' : 'blocked from publishing by:');
        for (const b of d.catalog.blockers) console.log(`  - ${b}`);
        console.log(`(classify or raise: \`atelier dataset label ${d.fullName} COLUMN LEVEL\`; lower: \`atelier declassify request ${d.fullName} COLUMN LEVEL --reason …\`)`);
      } else if (!d.catalog.published) console.log(`nothing blocks it: \`atelier dataset publish ${d.fullName}\``);
    });

  dataset
    .command('create <name>')
    .description('register a dataset (namespace/name, in a namespace your team owns) with its first version’s columns')
    .addOption(new Option('--domain <domain>', 'the domain it belongs to').choices(DOMAINS).makeOptionMandatory())
    .requiredOption('--column <name:type[:LEVEL[:CAT,CAT]]>', 'a column (repeatable), e.g. email:string:CONFIDENTIAL:PII; without a level it is UNCLASSIFIED', collectColumn)
    .requiredOption('--digest <sha256:hex>', 'content digest of the data, sha256:<64 hex digits>')
    .option('--sample <file.json>', 'up to 1,000 sample rows (a JSON list of objects keyed by column) for previews')
    .option('--description <text>')
    .action(async (name: string, opts: { domain: string; column: ColumnInput[]; digest: string; sample?: string; description?: string }, cmd: Command) => {
      const sample = await readVersion(opts);
      const { createDataset: d } = await connect(cmd).request<{ createDataset: { fullName: string; columns: { needsClassification: boolean }[] } }>(
        `mutation ($n: String!, $d: Domain!, $c: [DatasetColumnInput!]!, $digest: String!, $s: JSON, $desc: String) {
          createDataset(name: $n, domain: $d, columns: $c, digest: $digest, sample: $s, description: $desc) { fullName columns { needsClassification } }
        }`,
        { n: name, d: opts.domain, c: opts.column, digest: opts.digest, s: sample ?? null, desc: opts.description ?? null },
      );
      const unclassified = d.columns.filter((c) => c.needsClassification).length;
      console.log(`created dataset ${d.fullName} (${opts.domain}, ${d.columns.length} columns${sample ? `, ${sample.length} sample rows` : ''})`);
      if (unclassified) console.log(`${unclassified} column${unclassified === 1 ? '' : 's'} UNCLASSIFIED: classify with \`atelier dataset label ${d.fullName} COLUMN LEVEL\``);
    });

  dataset
    .command('version <name>')
    .description('record a new version (snapshot) of a dataset: kept columns keep their labels, new ones start UNCLASSIFIED unless given a level')
    .requiredOption('--column <name:type[:LEVEL[:CAT,CAT]]>', 'a column of the new version (repeatable)', collectColumn)
    .requiredOption('--digest <sha256:hex>', 'content digest of the new data')
    .option('--sample <file.json>', 'up to 1,000 sample rows for previews')
    .action(async (name: string, opts: { column: ColumnInput[]; digest: string; sample?: string }, cmd: Command) => {
      const sample = await readVersion(opts);
      const { addDatasetVersion: d } = await connect(cmd).request<{ addDatasetVersion: { fullName: string; versions: { version: number }[]; columns: { needsClassification: boolean }[]; catalog: { published: boolean; blockers: string[] } } }>(
        `mutation ($n: String!, $c: [DatasetColumnInput!]!, $digest: String!, $s: JSON) {
          addDatasetVersion(name: $n, columns: $c, digest: $digest, sample: $s) { fullName versions { version } columns { needsClassification } catalog { published blockers } }
        }`,
        { n: name, c: opts.column, digest: opts.digest, s: sample ?? null },
      );
      console.log(`${d.fullName} is at version ${d.versions[0]?.version ?? 1}`);
      const unclassified = d.columns.filter((c) => c.needsClassification).length;
      if (unclassified) console.log(`${unclassified} column${unclassified === 1 ? '' : 's'} UNCLASSIFIED: classify with \`atelier dataset label ${d.fullName} COLUMN LEVEL\``);
      if (!d.catalog.published && d.catalog.blockers.length) console.log(`not in the catalog: ${d.catalog.blockers.join('; ')}`);
    });

  dataset
    .command('label <name> <column>')
    .addArgument(new Argument('<level>', LEVELS.join(' < ')).argParser((raw) => parseLevel(raw, 'level')))
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
        opts: { columns?: string[]; where?: { column: string; equals: unknown }[]; orderBy?: { column: string; descending: boolean }; groupBy?: string[]; limit: number; json?: boolean },
        cmd: Command,
      ) => {
        const { datasetPreview: p } = await hinted(
          connect(cmd).request<{ datasetPreview: { columns: string[]; withheld: string[]; rows: Record<string, unknown>[]; groups: { key: Record<string, unknown>; count: number }[] | null } }>(
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
          else print(formatTable([...keys, 'COUNT'], p.groups.map((g) => [...keys.map((k) => cell(g.key[k])), String(g.count)])));
        } else if (!p.columns.length) console.log('no column is readable at your clearance');
        else if (!p.rows.length) console.log(`no rows${opts.where ? ' match' : ' (no sample was given with the dataset)'}`);
        else print(formatTable(p.columns, p.rows.map((r) => p.columns.map((c) => cell(r[c])))));
        if (p.withheld.length) console.log(`\nwithheld (not readable at your clearance): ${p.withheld.join(', ')}`);
      },
    );

  dataset
    .command('publish <name>')
    .description('put a dataset in the interactive catalog; refused, naming every column, while one is UNCLASSIFIED or beyond the catalog’s ceiling')
    .action(async (name: string, _opts: unknown, cmd: Command) => {
      const { publishDatasetToCatalog } = await hinted(
        connect(cmd).request<{ publishDatasetToCatalog: { catalog: CatalogView } }>(`mutation ($n: String!) { publishDatasetToCatalog(name: $n) { ${CATALOG} } }`, { n: name }),
        { FORBIDDEN: `classify with \`atelier dataset label ${name} COLUMN LEVEL\`; lower a label with \`atelier declassify request ${name} COLUMN LEVEL --reason …\`` },
      );
      console.log(describeCatalog(name, publishDatasetToCatalog.catalog));
    });

  dataset
    .command('withdraw <name>')
    .description('take a dataset out of the interactive catalog')
    .option('--reason <text>', 'why, for the audit log')
    .action(async (name: string, opts: { reason?: string }, cmd: Command) => {
      await connect(cmd).request(`mutation ($n: String!, $r: String) { withdrawDatasetFromCatalog(name: $n, reason: $r) { id } }`, { n: name, r: opts.reason ?? null });
      console.log(`${name} is not in the interactive catalog`);
    });

  return dataset;
}

interface DeclassificationView {
  id: string;
  dataset: string;
  column: string;
  from: LabelView;
  to: LabelView;
  reason: string;
  state: string;
  requestedBy: { name: string };
  decidedBy: { name: string } | null;
  createdAt: string;
}
const DECLASSIFICATION = 'id dataset column from { level categories } to { level categories } reason state requestedBy { name } decidedBy { name } createdAt';

export function declassifyCommand(connect: Connect): Command {
  const declassify = new Command('declassify').description('lower a column’s label: a request that someone other than its author approves');

  declassify
    .command('request <name> <column>')
    .addArgument(new Argument('<level>', 'the lower level asked for').argParser((raw) => parseLevel(raw, 'level')))
    .description('ask for a column’s label to be lowered (never below what lineage computed)')
    .requiredOption('--reason <text>', 'why it may be lowered, for whoever decides')
    .option('--categories <A,B>', 'the categories it keeps (default: none)', (raw) => parseCategories(raw, '--categories'))
    .action(async (name: string, column: string, level: string, opts: { reason: string; categories?: string[] }, cmd: Command) => {
      const { requestDeclassification: r } = await hinted(
        connect(cmd).request<{ requestDeclassification: DeclassificationView }>(
          `mutation ($d: String!, $c: String!, $l: ClassificationLabelInput!, $r: String!) { requestDeclassification(dataset: $d, column: $c, label: $l, reason: $r) { ${DECLASSIFICATION} } }`,
          { d: name, c: column, l: { level, categories: opts.categories ?? [] }, r: opts.reason },
        ),
        { BAD_USER_INPUT: `classify or raise labels with \`atelier dataset label ${name} ${column} LEVEL\``, NOT_FOUND: LABEL_HINTS.NOT_FOUND },
      );
      console.log(`asked to lower ${name}.${column} from ${formatLabel(r.from)} to ${formatLabel(r.to)}: request ${r.id}`);
      console.log(`someone else decides it: \`atelier declassify approve ${r.id}\` or \`atelier declassify reject ${r.id}\``);
    });

  declassify
    .command('list')
    .description('declassification requests waiting for a decision, newest first')
    .option('--all', 'decided ones too')
    .option('--json', 'print as JSON')
    .action(async (opts: { all?: boolean; json?: boolean }, cmd: Command) => {
      const { declassifications } = await connect(cmd).request<{ declassifications: DeclassificationView[] }>(
        `query ($p: Boolean) { declassifications(pending: $p) { ${DECLASSIFICATION} } }`,
        { p: !opts.all },
      );
      if (opts.json) return console.log(JSON.stringify(declassifications, null, 2));
      if (!declassifications.length) return console.log(opts.all ? 'no declassification requests' : 'no declassification requests wait for a decision');
      print(
        formatTable(
          ['ID', 'STATE', 'COLUMN', 'FROM', 'TO', 'ASKED BY', 'DECIDED BY', 'ASKED AT', 'REASON'],
          declassifications.map((r) => [r.id, r.state, `${r.dataset}.${r.column}`, formatLabel(r.from), formatLabel(r.to), r.requestedBy.name, r.decidedBy?.name ?? '-', r.createdAt, r.reason]),
        ),
      );
    });

  for (const [verb, approve] of [
    ['approve', true],
    ['reject', false],
  ] as const) {
    declassify
      .command(`${verb} <id>`)
      .description(approve ? 'approve a declassification, applying the lower label (not its author; admins or the owning team)' : 'reject a declassification; the label stays')
      .action(async (id: string, _opts: unknown, cmd: Command) => {
        const { decideDeclassification: r } = await hinted(
          connect(cmd).request<{ decideDeclassification: DeclassificationView }>(`mutation ($id: ID!, $a: Boolean!) { decideDeclassification(id: $id, approve: $a) { ${DECLASSIFICATION} } }`, { id, a: approve }),
          { NOT_FOUND: 'list pending requests with `atelier declassify list`' },
        );
        console.log(
          approve ? `approved ${r.id}: ${r.column} is now ${formatLabel(r.to)} (was ${formatLabel(r.from)})` : `rejected ${r.id}: ${r.column} stays ${formatLabel(r.from)}`,
        );
      });
  }
  return declassify;
}

export function auditCommand(connect: Connect): Command {
  return new Command('audit')
    .description('the audit log, newest first (admins): data decisions, label changes, declassifications, grants, memberships')
    .option('--subject <subject>', 'only this subject, e.g. dataset:crm/users.email or team:vision')
    .option('--since <period>', 'since a time: 1h, 2d, 30m or an ISO 8601 date-time', parseSince)
    .option('-n, --limit <n>', 'most records, up to 1000', positiveInt, 100)
    .option('--json', 'print as JSON (with each record’s details)')
    .action(async (opts: { subject?: string; since?: string; limit: number; json?: boolean }, cmd: Command) => {
      const { auditEvents } = await connect(cmd).request<{ auditEvents: { at: string; identity: { name: string } | null; action: string; decision: string; subject: string; rule: string; details: unknown }[] }>(
        `query ($s: String, $since: DateTime, $l: Int) { auditEvents(subject: $s, since: $since, limit: $l) { at identity { name } action decision subject rule details } }`,
        { s: opts.subject ?? null, since: opts.since ?? null, l: Math.min(opts.limit, 1000) },
      );
      if (opts.json) return console.log(JSON.stringify(auditEvents, null, 2));
      if (!auditEvents.length) return console.log('no audit records match');
      const details = (d: unknown) => (d && typeof d === 'object' && Object.keys(d).length ? JSON.stringify(d) : '');
      print(
        formatTable(
          ['AT', 'WHO', 'ACTION', 'DECISION', 'SUBJECT', 'RULE', 'DETAILS'],
          auditEvents.map((e) => [e.at, e.identity?.name ?? '(system)', e.action, e.decision, e.subject, e.rule, details(e.details)]),
        ),
      );
    });
}
