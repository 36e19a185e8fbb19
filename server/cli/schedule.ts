// `atelier schedule …`: create, list, show, update, backfill, pause, resume and delete the cron schedules that start
// workflow runs.
import { Command, InvalidArgumentError, Option } from 'commander';
import { ApiError, type Client } from './client';
import { assertSomeChange, parseParam, positiveInt, wholeNumber } from './options';

interface ScheduleView {
  id: string;
  name: string;
  cron: string;
  timeZone: string;
  paused: boolean;
  catchUp: string;
  overlap: string;
  priority: number;
  startAt: string | null;
  endAt: string | null;
  workflow: { name: string };
  team: { name: string } | null;
  nextFireTimes: string[];
  fireTimeParameter: string | null;
}

interface FireView {
  fireTime: string;
  backfill: boolean;
  outcome: string;
  message: string | null;
  run: { id: string; status: string } | null;
}

const SCHEDULE_FIELDS =
  'id name cron timeZone paused catchUp overlap priority startAt endAt fireTimeParameter workflow { name } team { name } nextFireTimes(count: $count)';

function dateTime(raw: string): string {
  if (Number.isNaN(Date.parse(raw))) throw new InvalidArgumentError(`expected an ISO 8601 date-time such as 2030-01-31T09:00:00Z, got "${raw}"`);
  return new Date(raw).toISOString();
}

/**
 * `schedule update --start/--end`: a date-time, or `none` to take that end of the window away (kept as the word here:
 * commander stores a parser's null as "", which the API would refuse as a date-time).
 */
const dateTimeOrNone = (raw: string): string => (raw.trim().toLowerCase() === 'none' ? 'none' : dateTime(raw));
const windowEnd = (value: string | undefined) => (value === 'none' ? null : value);

/** `cancel-previous` → `CANCEL_PREVIOUS`: the CLI takes lower-case words, the API enum values. */
const enumValue = (word: string | undefined) => word?.toUpperCase().replace(/-/g, '_') ?? null;

function describe(s: ScheduleView): string {
  const window = s.startAt || s.endAt ? `  from ${s.startAt ?? 'now'} to ${s.endAt ?? 'forever'}` : '';
  const next = s.paused ? 'paused' : s.nextFireTimes.length ? `next ${s.nextFireTimes.join(', ')}` : 'no fire time left';
  return `${s.id}  ${s.workflow.name}  "${s.name}"  ${s.cron} (${s.timeZone})  catch-up ${s.catchUp.toLowerCase()}, overlap ${s.overlap.toLowerCase().replace(/_/g, '-')}${s.priority ? `, priority ${s.priority}` : ''}${window}${s.fireTimeParameter ? `  fire time → ${s.fireTimeParameter}` : ''}${s.team ? `  team ${s.team.name}` : ''}\n    ${next}`;
}

/**
 * The `schedule` command. `connect` makes the API client from the parsed global options (--url, --token), which
 * are only known when a sub-command runs.
 */
export function scheduleCommand(connect: (command: Command) => Client): Command {
  const schedule = new Command('schedule').description('start runs of a workflow on a cron schedule');

  schedule
    .command('create <workflow>')
    .description('create a schedule; its fire times before now are never run')
    .requiredOption('--cron <expr>', 'cron expression: 5 fields (minute hour day-of-month month day-of-week), or 6 with seconds first')
    .option('--tz <zone>', 'IANA time zone the cron expression is read in', 'UTC')
    .option('-p, --param <key=value>', 'run parameter (repeatable); the value is parsed as JSON when it can be', parseParam)
    .addOption(
      new Option('--catch-up <policy>', 'missed fire times (control plane down, schedule paused): run none, the latest once, or all up to --catch-up-limit')
        .choices(['skip', 'latest', 'all'])
        .default('skip'),
    )
    .option('--catch-up-limit <n>', 'with --catch-up all: most missed fire times run', positiveInt)
    .addOption(
      new Option('--overlap <policy>', 'when the previous run is still going: start anyway, skip, or cancel it')
        .choices(['allow', 'skip', 'cancel-previous'])
        .default('skip'),
    )
    .option('--priority <n>', 'of the runs it starts, -10 to 10 (default 0): a full pool dispatches higher-priority runs’ tasks first', wholeNumber)
    .option('--name <name>', 'unique per workflow (default: the cron expression)')
    .option('--fire-time-param <name>', 'a run parameter the workflow declares, set by each fire to its fire time (ISO 8601 in --tz)')
    .option('--start <datetime>', 'no fire time before this (ISO 8601)', dateTime)
    .option('--end <datetime>', 'no fire time after this (ISO 8601)', dateTime)
    .option('--paused', 'create it paused')
    .option('--team <name>', "the team that owns it, whose members may change it (default: the workflow's team when you are in it, else your only team)")
    .option('-q, --quiet', 'print only the schedule id')
    .action(
      async (
        workflow: string,
        opts: {
          cron: string;
          tz: string;
          param?: Record<string, unknown>;
          catchUp: string;
          catchUpLimit?: number;
          overlap: string;
          priority?: number;
          name?: string;
          fireTimeParam?: string;
          start?: string;
          end?: string;
          paused?: boolean;
          team?: string;
          quiet?: boolean;
        },
        command: Command,
      ) => {
        const { createSchedule } = await connect(command).request<{ createSchedule: ScheduleView }>(
          `mutation ($input: CreateScheduleInput!, $count: Int) { createSchedule(input: $input) { ${SCHEDULE_FIELDS} } }`,
          {
            count: 3,
            input: {
              workflow,
              cron: opts.cron,
              timeZone: opts.tz,
              parameters: opts.param ?? {},
              catchUp: enumValue(opts.catchUp),
              catchUpLimit: opts.catchUpLimit ?? null,
              overlap: enumValue(opts.overlap),
              priority: opts.priority ?? null,
              name: opts.name ?? null,
              fireTimeParameter: opts.fireTimeParam ?? null,
              startAt: opts.start ?? null,
              endAt: opts.end ?? null,
              paused: opts.paused ?? false,
              team: opts.team ?? null,
            },
          },
        );
        console.log(opts.quiet ? createSchedule.id : `created schedule ${describe(createSchedule)}`);
      },
    );

  schedule
    .command('list [workflow]')
    .description('list schedules (of one workflow) with their next fire times')
    .option('-n, --next <n>', 'how many next fire times to show', positiveInt, 3)
    .action(async (workflow: string | undefined, opts: { next: number }, command: Command) => {
      const { schedules } = await connect(command).request<{ schedules: ScheduleView[] }>(
        `query ($workflow: String, $count: Int) { schedules(workflow: $workflow) { ${SCHEDULE_FIELDS} } }`,
        { workflow: workflow ?? null, count: opts.next },
      );
      if (!schedules.length)
        console.log(`no schedules${workflow ? ` for ${workflow}` : ''}: create one with \`atelier schedule create WORKFLOW --cron "0 9 * * *"\``);
      for (const s of schedules) console.log(describe(s));
    });

  schedule
    .command('show <id>')
    .description('show a schedule and its recent fires (the runs started, and why any was skipped or failed)')
    .option('-n, --limit <n>', 'how many recent fires', positiveInt, 20)
    .action(async (id: string, opts: { limit: number }, command: Command) => {
      const { schedule: s } = await connect(command).request<{ schedule: (ScheduleView & { fires: FireView[] }) | null }>(
        `query ($id: ID!, $count: Int, $limit: Int) { schedule(id: $id) { ${SCHEDULE_FIELDS} fires(limit: $limit) { fireTime backfill outcome message run { id status } } } }`,
        { id, count: 3, limit: opts.limit },
      );
      if (!s) throw new ApiError(`There is no schedule ${id}; \`atelier schedule list\` shows them.`, 'NOT_FOUND');
      console.log(describe(s));
      if (!s.fires.length) console.log('    no fires yet');
      for (const f of s.fires)
        console.log(
          `    ${f.fireTime}  ${f.outcome.padEnd(15)}${f.backfill ? '  backfill' : ''}  ${f.run ? `run ${f.run.id} ${f.run.status}` : ''}${f.message ? `  ${f.message}` : ''}`.trimEnd(),
        );
    });

  schedule
    .command('update <id>')
    .description('change a schedule; what you leave out keeps its value, and a new cron, zone or window applies from now on')
    .option('--cron <expr>', 'a new cron expression: 5 fields (minute hour day-of-month month day-of-week), or 6 with seconds first')
    .option('--tz <zone>', 'a new IANA time zone the cron expression is read in')
    .option('-p, --param <key=value>', 'run parameter (repeatable); replaces all its parameters: give every one it should keep', parseParam)
    .addOption(
      new Option('--catch-up <policy>', 'missed fire times: run none, the latest once, or all up to --catch-up-limit').choices(['skip', 'latest', 'all']),
    )
    .option('--catch-up-limit <n>', 'with --catch-up all: most missed fire times run', positiveInt)
    .addOption(
      new Option('--overlap <policy>', 'when the previous run is still going: start anyway, skip, or cancel it').choices(['allow', 'skip', 'cancel-previous']),
    )
    .option('--priority <n>', 'of the runs it starts, -10 to 10', wholeNumber)
    .option('--name <name>', 'a new name, unique per workflow')
    .option('--start <datetime>', 'no fire time before this (ISO 8601), or none', dateTimeOrNone)
    .option('--end <datetime>', 'no fire time after this (ISO 8601), or none', dateTimeOrNone)
    .option('--fire-time-param <name>', 'the run parameter each fire sets to its fire time, or none')
    .action(
      async (
        id: string,
        opts: {
          cron?: string;
          tz?: string;
          param?: Record<string, unknown>;
          catchUp?: string;
          catchUpLimit?: number;
          overlap?: string;
          priority?: number;
          name?: string;
          start?: string;
          end?: string;
          fireTimeParam?: string;
        },
        command: Command,
      ) => {
        assertSomeChange(command);
        // Only what was given is sent: a field sent as null would clear the window's ends.
        const input = Object.fromEntries(
          Object.entries({
            cron: opts.cron,
            timeZone: opts.tz,
            parameters: opts.param,
            catchUp: opts.catchUp && enumValue(opts.catchUp),
            catchUpLimit: opts.catchUpLimit,
            overlap: opts.overlap && enumValue(opts.overlap),
            priority: opts.priority,
            name: opts.name,
            startAt: windowEnd(opts.start),
            endAt: windowEnd(opts.end),
            fireTimeParameter: opts.fireTimeParam && (opts.fireTimeParam.trim().toLowerCase() === 'none' ? null : opts.fireTimeParam),
          }).filter(([, value]) => value !== undefined),
        );
        const { updateSchedule } = await connect(command).request<{ updateSchedule: ScheduleView }>(
          `mutation ($id: ID!, $input: UpdateScheduleInput!, $count: Int) { updateSchedule(id: $id, input: $input) { ${SCHEDULE_FIELDS} } }`,
          { id, input, count: 3 },
        );
        console.log(`updated schedule ${describe(updateSchedule)}`);
      },
    );

  schedule
    .command('backfill <id>')
    .description("run the schedule's fire times in a past range that it has not dealt with yet (at most 1,000 at once)")
    .requiredOption('--from <datetime>', 'the first moment of the range (ISO 8601)', dateTime)
    .requiredOption('--to <datetime>', 'the last moment of the range (ISO 8601), no later than now', dateTime)
    .action(async (id: string, opts: { from: string; to: string }, command: Command) => {
      const { backfillSchedule: b } = await connect(command).request<{
        backfillSchedule: { schedule: { name: string }; queued: string[]; alreadyDealtWith: string[] };
      }>(
        `mutation ($id: ID!, $from: DateTime!, $to: DateTime!) { backfillSchedule(id: $id, from: $from, to: $to) { schedule { name } queued alreadyDealtWith } }`,
        { id, from: opts.from, to: opts.to },
      );
      const times = (n: number) => `${n} fire time${n === 1 ? '' : 's'}`;
      console.log(
        `queued ${times(b.queued.length)} of schedule "${b.schedule.name}"${b.queued.length ? `, ${b.queued[0]} to ${b.queued.at(-1)}` : ''}${b.alreadyDealtWith.length ? `; ${times(b.alreadyDealtWith.length)} already dealt with, left as they were` : ''}`,
      );
      if (b.queued.length) console.log(`they start after the schedule's on-time fires; follow them with \`atelier schedule show ${id}\``);
    });

  for (const [verb, mutation, help] of [
    ['pause', 'pauseSchedule', 'stop a schedule firing until it is resumed'],
    ['resume', 'resumeSchedule', 'resume a paused schedule; fire times missed while paused follow its catch-up policy'],
  ] as const) {
    schedule
      .command(`${verb} <id>`)
      .description(help)
      .action(async (id: string, _opts: unknown, command: Command) => {
        const result = await connect(command).request<Record<string, ScheduleView>>(
          `mutation ($id: ID!, $count: Int) { ${mutation}(id: $id) { ${SCHEDULE_FIELDS} } }`,
          { id, count: 3 },
        );
        console.log(`${verb}d schedule ${describe(result[mutation]!)}`);
      });
  }

  schedule
    .command('delete <id>')
    .description('delete a schedule (the runs it started stay)')
    .action(async (id: string, _opts: unknown, command: Command) => {
      await connect(command).request(`mutation ($id: ID!) { deleteSchedule(id: $id) }`, { id });
      console.log(`deleted schedule ${id}`);
    });

  return schedule;
}
