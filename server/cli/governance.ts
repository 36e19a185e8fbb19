// `atelier declassify …` and `atelier audit`: requests to lower a column's label (decided by someone else) and the
// audit log.
import { Argument, Command } from 'commander';
import type { Client } from './client';
import { formatLabel, hinted, LABEL_HINTS, type LabelView, parseCategories, parseLevel, print } from './labels';
import { formatTable, parseSince, positiveInt } from './options';

type Connect = (command: Command) => Client;

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
          declassifications.map((r) => [
            r.id,
            r.state,
            `${r.dataset}.${r.column}`,
            formatLabel(r.from),
            formatLabel(r.to),
            r.requestedBy.name,
            r.decidedBy?.name ?? '-',
            r.createdAt,
            r.reason,
          ]),
        ),
      );
    });

  for (const [verb, approve] of [
    ['approve', true],
    ['reject', false],
  ] as const) {
    declassify
      .command(`${verb} <id>`)
      .description(
        approve
          ? 'approve a declassification, applying the lower label (not its author; admins or the owning team)'
          : 'reject a declassification; the label stays',
      )
      .action(async (id: string, _opts: unknown, cmd: Command) => {
        const { decideDeclassification: r } = await hinted(
          connect(cmd).request<{ decideDeclassification: DeclassificationView }>(
            `mutation ($id: ID!, $a: Boolean!) { decideDeclassification(id: $id, approve: $a) { ${DECLASSIFICATION} } }`,
            { id, a: approve },
          ),
          { NOT_FOUND: 'list pending requests with `atelier declassify list`' },
        );
        console.log(
          approve
            ? `approved ${r.id}: ${r.column} is now ${formatLabel(r.to)} (was ${formatLabel(r.from)})`
            : `rejected ${r.id}: ${r.column} stays ${formatLabel(r.from)}`,
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
      const { auditEvents } = await connect(cmd).request<{
        auditEvents: { at: string; identity: { name: string } | null; action: string; decision: string; subject: string; rule: string; details: unknown }[];
      }>(
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
