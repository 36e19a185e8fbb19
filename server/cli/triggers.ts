// `atelier trigger …`: create, list, show, update, pause, resume, rotate (an http one's secret), delete and fire the triggers that start workflow runs on
// events (a new dataset version, an alias moved, a workflow's run succeeding or failing, an alert, an inbound hook).
import { readFile } from 'node:fs/promises';
import { Command, InvalidArgumentError, Option } from 'commander';
import { ApiError, type Client } from './client';
import { assertSomeChange, parseParam, positiveInt, wholeNumber } from './options';

interface TriggerView {
  id: string;
  name: string;
  kind: string;
  source: string | null;
  overlap: string;
  priority: number;
  maxRunsPerMinute: number;
  paused: boolean;
  hookPath: string | null;
  parameterMap: Record<string, string>;
  workflow: { name: string };
  team: { name: string } | null;
}

interface FiringView {
  outcome: string;
  message: string | null;
  signalType: string;
  signalSubject: string;
  /** run.succeeded, run.failed: the run that ended. */
  signalRun: { id: string; status: string } | null;
  signalAt: string;
  run: { id: string; status: string } | null;
}

const FIELDS = 'id name kind source overlap priority maxRunsPerMinute paused hookPath parameterMap workflow { name } team { name }';
const enumValue = (word: string | undefined) => word?.toUpperCase().replace(/-/g, '_') ?? null;

function mapping(raw: string, previous: Record<string, string> = {}): Record<string, string> {
  const at = raw.indexOf('=');
  if (at < 1) throw new InvalidArgumentError(`expected PARAM=/json/pointer, got "${raw}"`);
  return { ...previous, [raw.slice(0, at)]: raw.slice(at + 1) };
}

function describe(t: TriggerView): string {
  const source = t.hookPath ?? t.source ?? (t.kind === 'ALERT_OPENED' ? 'any alert of its team' : '');
  const mapped = Object.entries(t.parameterMap ?? {});
  const map = mapped.length ? `  map ${mapped.map(([k, v]) => `${k}←${v}`).join(', ')}` : '';
  return `${t.id}  ${t.workflow.name}  "${t.name}"  ${t.kind.toLowerCase().replace(/_/g, '-')} ${source}  overlap ${t.overlap.toLowerCase().replace(/_/g, '-')}, at most ${t.maxRunsPerMinute} runs/min${t.priority ? `, priority ${t.priority}` : ''}${t.paused ? '  PAUSED' : ''}${t.team ? `  team ${t.team.name}` : ''}${map}`;
}

/** The `trigger` command; `connect` makes the client and knows the token, from the global options. */
export function triggerCommand(connect: (command: Command) => { client: Client; url: string; token: string | null }): Command {
  const trigger = new Command('trigger').description(
    'start runs of a workflow on events (dataset versions, alias moves, runs succeeding or failing, alerts, inbound hooks)',
  );

  trigger
    .command('create <workflow> <name>')
    .description('create a trigger; an http one prints its HMAC secret once')
    .addOption(
      new Option('--on <kind>', 'what it listens for')
        .choices(['dataset-version', 'alias-moved', 'run-succeeded', 'run-failed', 'alert-opened', 'http'])
        .makeOptionMandatory(),
    )
    .option('--source <source>', 'dataset ns/name, alias ns/model@alias, a workflow name, or a monitor id (none for http, or any alert of its team)')
    .option('-p, --param <key=value>', 'fixed run parameter (repeatable)', parseParam)
    .option('-m, --map <param=/pointer>', 'run parameter taken from the event payload by JSON pointer (repeatable)', mapping)
    .addOption(new Option('--overlap <policy>', 'when its previous run is still going').choices(['allow', 'skip', 'cancel-previous']).default('allow'))
    .option('--priority <n>', 'of the runs it starts, -10 to 10 (default 0): a full pool dispatches higher-priority runs’ tasks first', wholeNumber)
    .option('--max-runs-per-minute <n>', 'rate limit; signals beyond are recorded rate-limited', positiveInt)
    .option('--team <name>', 'the owning team (default: the workflow’s team when you are in it, else your only team)')
    .option('--paused', 'create it paused')
    .action(
      async (
        workflow: string,
        name: string,
        opts: {
          on: string;
          source?: string;
          param?: Record<string, unknown>;
          map?: Record<string, string>;
          overlap: string;
          priority?: number;
          maxRunsPerMinute?: number;
          team?: string;
          paused?: boolean;
        },
        command: Command,
      ) => {
        const { createTrigger } = await connect(command).client.request<{ createTrigger: { trigger: TriggerView; secret: string | null } }>(
          `mutation ($input: CreateTriggerInput!) { createTrigger(input: $input) { secret trigger { ${FIELDS} } } }`,
          {
            input: {
              workflow,
              name,
              kind: enumValue(opts.on),
              source: opts.source ?? null,
              parameters: opts.param ?? {},
              parameterMap: opts.map ?? {},
              overlap: enumValue(opts.overlap),
              priority: opts.priority ?? null,
              maxRunsPerMinute: opts.maxRunsPerMinute ?? null,
              team: opts.team ?? null,
              paused: opts.paused ?? false,
            },
          },
        );
        console.log(`created trigger ${describe(createTrigger.trigger)}`);
        if (createTrigger.secret) console.log(`secret (shown once; sign hooks with it): ${createTrigger.secret}`);
      },
    );

  trigger
    .command('list [workflow]')
    .description('list triggers (of one workflow)')
    .action(async (workflow: string | undefined, _opts: unknown, command: Command) => {
      const { triggers } = await connect(command).client.request<{ triggers: TriggerView[] }>(
        `query ($workflow: String) { triggers(workflow: $workflow) { ${FIELDS} } }`,
        { workflow: workflow ?? null },
      );
      if (!triggers.length) console.log(`no triggers${workflow ? ` for ${workflow}` : ''}: create one with \`atelier trigger create WORKFLOW NAME --on http\``);
      for (const t of triggers) console.log(describe(t));
    });

  trigger
    .command('show <name>')
    .description('show a trigger and its recent firings (the runs started, and why a signal started none)')
    .option('-n, --limit <n>', 'how many recent firings', positiveInt, 20)
    .action(async (name: string, opts: { limit: number }, command: Command) => {
      const { trigger: t } = await connect(command).client.request<{ trigger: (TriggerView & { firings: FiringView[] }) | null }>(
        `query ($id: String!, $limit: Int) { trigger(id: $id) { ${FIELDS} firings(limit: $limit) { outcome message signalType signalSubject signalAt signalRun { id status } run { id status } } } }`,
        { id: name, limit: opts.limit },
      );
      if (!t) throw new ApiError(`There is no trigger ${name}; \`atelier trigger list\` shows them.`, 'NOT_FOUND');
      console.log(describe(t));
      if (!t.firings.length) console.log('    no firings yet');
      for (const f of t.firings)
        console.log(
          `    ${f.signalAt}  ${f.signalType}${f.signalRun ? ` of run ${f.signalRun.id}` : ''}  ${f.outcome.padEnd(15)}  ${f.run ? `run ${f.run.id} ${f.run.status}` : ''}${f.message ? `  ${f.message}` : ''}`.trimEnd(),
        );
    });

  trigger
    .command('update <name>')
    .description('change a trigger; what you leave out keeps its value (what it listens for cannot change: create another)')
    .option('-p, --param <key=value>', 'fixed run parameter (repeatable); replaces all its fixed parameters: give every one it should keep', parseParam)
    .option('-m, --map <param=/pointer>', 'run parameter taken from the event payload (repeatable); replaces its whole map', mapping)
    .addOption(new Option('--overlap <policy>', 'when its previous run is still going').choices(['allow', 'skip', 'cancel-previous']))
    .option('--priority <n>', 'of the runs it starts, -10 to 10', wholeNumber)
    .option('--max-runs-per-minute <n>', 'rate limit; signals beyond are recorded rate-limited', positiveInt)
    .action(
      async (
        name: string,
        opts: { param?: Record<string, unknown>; map?: Record<string, string>; overlap?: string; priority?: number; maxRunsPerMinute?: number },
        command: Command,
      ) => {
        assertSomeChange(command);
        const { updateTrigger } = await connect(command).client.request<{ updateTrigger: TriggerView }>(
          `mutation ($id: String!, $input: UpdateTriggerInput!) { updateTrigger(id: $id, input: $input) { ${FIELDS} } }`,
          {
            id: name,
            input: {
              parameters: opts.param ?? null,
              parameterMap: opts.map ?? null,
              overlap: enumValue(opts.overlap),
              priority: opts.priority ?? null,
              maxRunsPerMinute: opts.maxRunsPerMinute ?? null,
            },
          },
        );
        console.log(`updated trigger ${describe(updateTrigger)}`);
      },
    );

  trigger
    .command('rotate <name>')
    .description('a new HMAC secret for an http trigger (printed once); the old one stops working at once')
    .action(async (name: string, _opts: unknown, command: Command) => {
      const { rotateTriggerSecret } = await connect(command).client.request<{ rotateTriggerSecret: { trigger: TriggerView; secret: string } }>(
        `mutation ($id: String!) { rotateTriggerSecret(id: $id) { secret trigger { ${FIELDS} } } }`,
        { id: name },
      );
      console.log(`rotated trigger ${describe(rotateTriggerSecret.trigger)}`);
      console.log(`secret (shown once; sign hooks with it from now on): ${rotateTriggerSecret.secret}`);
    });

  for (const [verb, mutation, help] of [
    ['pause', 'pauseTrigger', 'stop a trigger matching new events until resumed'],
    ['resume', 'resumeTrigger', 'resume a paused trigger (events while paused started nothing)'],
  ] as const) {
    trigger
      .command(`${verb} <name>`)
      .description(help)
      .action(async (name: string, _opts: unknown, command: Command) => {
        const result = await connect(command).client.request<Record<string, TriggerView>>(`mutation ($id: String!) { ${mutation}(id: $id) { ${FIELDS} } }`, {
          id: name,
        });
        console.log(`${verb}d trigger ${describe(result[mutation]!)}`);
      });
  }

  trigger
    .command('delete <name>')
    .description('delete a trigger and its firing records (the runs it started stay)')
    .action(async (name: string, _opts: unknown, command: Command) => {
      const { deleteTrigger } = await connect(command).client.request<{ deleteTrigger: string }>(`mutation ($id: String!) { deleteTrigger(id: $id) }`, {
        id: name,
      });
      console.log(`deleted trigger ${deleteTrigger}`);
    });

  trigger
    .command('fire <name>')
    .description('fire an http trigger with a JSON payload, as a service would (POST /hooks/trigger/NAME with your token)')
    .option('-d, --data <json>', 'the JSON payload', '{}')
    .option('--data-file <path>', 'read the JSON payload from a file')
    .option('--delivery <id>', 'a delivery id: firing again with the same id is the same event')
    .action(async (name: string, opts: { data: string; dataFile?: string; delivery?: string }, command: Command) => {
      const { url, token } = connect(command);
      const body = opts.dataFile ? await readFile(opts.dataFile, 'utf8') : opts.data;
      const headers: Record<string, string> = { 'content-type': 'application/json' };
      if (token) headers.authorization = `Bearer ${token}`;
      if (opts.delivery) headers['x-atelier-delivery'] = opts.delivery;
      const res = await fetch(`${url}/hooks/trigger/${encodeURIComponent(name)}`, { method: 'POST', headers, body });
      const answer = (await res.json().catch(() => null)) as {
        error?: { code: string; message: string; details?: { path: string; message: string }[] };
      } & Record<string, unknown>;
      if (!res.ok)
        throw new ApiError(answer?.error?.message ?? `HTTP ${res.status}`, answer?.error?.code ?? `HTTP_${res.status}`, answer?.error?.details ?? []);
      const { signalId, outcome, runId, message } = answer as { signalId: string; outcome: string; runId: string | null; message: string | null };
      console.log(`signal ${signalId}: ${outcome}${runId ? `, run ${runId}` : ''}${message ? ` (${message})` : ''}`);
    });

  return trigger;
}
