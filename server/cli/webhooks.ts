// `atelier webhook …`: a team's webhooks (create, list, update, rotate the signing secret, delete) and their delivery
// log (deliveries, replay). The secret is printed once, when created or rotated.
import { Command, Option } from 'commander';
import type { Client } from './client';
import { assertSomeChange, collect, positiveInt } from './options';

interface WebhookView {
  id: string;
  url: string;
  events: string[];
  description: string;
  active: boolean;
  previousSecretExpiresAt: string | null;
  team: { name: string };
}

interface DeliveryView {
  id: string;
  eventId: string;
  eventType: string;
  subject: string;
  status: string;
  attempts: number;
  lastStatusCode: number | null;
  lastError: string | null;
  createdAt: string;
}

const WEBHOOK_FIELDS = 'id url events description active previousSecretExpiresAt team { name }';

function describe(w: WebhookView): string {
  const overlap = w.previousSecretExpiresAt ? `  (previous secret signs until ${w.previousSecretExpiresAt})` : '';
  return `${w.id}  ${w.team.name}  ${w.active ? 'active' : 'inactive'}  ${w.url}  ${w.events.join(',')}${w.description ? `  "${w.description}"` : ''}${overlap}`;
}

function printSecret(secret: string): void {
  console.log(`secret ${secret}`);
  console.log('  store it now: it is never shown again (README "Webhooks" shows how a receiver verifies it)');
}

export function webhookCommand(connect: (command: Command) => Client): Command {
  const webhook = new Command('webhook').description("a team's webhooks: signed POSTs of events (run.*, model.*, alert.*) to a URL, with a delivery log");

  webhook
    .command('create <team> <url>')
    .description('subscribe a URL (on ATELIER_WEBHOOK_ALLOWLIST) to events of a team; prints the signing secret once')
    .requiredOption('-e, --event <type>', 'an event type (run.failed), a prefix (run.*) or * (repeatable)', collect)
    .option('--description <text>', 'what it is for')
    .action(async (team: string, url: string, opts: { event: string[]; description?: string }, command: Command) => {
      const { createWebhook } = await connect(command).request<{ createWebhook: { secret: string; webhook: WebhookView } }>(
        `mutation ($team: String!, $url: String!, $events: [String!]!, $description: String) {
          createWebhook(team: $team, url: $url, events: $events, description: $description) { secret webhook { ${WEBHOOK_FIELDS} } } }`,
        { team, url, events: opts.event, description: opts.description ?? null },
      );
      console.log(`created webhook ${describe(createWebhook.webhook)}`);
      printSecret(createWebhook.secret);
    });

  webhook
    .command('list <team>')
    .description("a team's webhooks")
    .action(async (team: string, _opts: unknown, command: Command) => {
      const { webhooks } = await connect(command).request<{ webhooks: WebhookView[] }>(
        `query ($team: String!) { webhooks(team: $team) { ${WEBHOOK_FIELDS} } }`,
        {
          team,
        },
      );
      if (!webhooks.length) console.log(`no webhooks for ${team}: create one with \`atelier webhook create ${team} URL --event 'run.*'\``);
      for (const w of webhooks) console.log(describe(w));
    });

  webhook
    .command('update <id>')
    .description("change a webhook's URL, events, description, or whether it is active")
    .option('--url <url>', 'a new URL (on the allowlist)')
    .option('-e, --event <type>', 'replace the event types (repeatable)', collect)
    .option('--description <text>', 'a new description')
    .addOption(new Option('--active', 'deliver again (pending deliveries resume)').conflicts('inactive'))
    .option('--inactive', 'stop new deliveries; pending ones wait')
    .action(async (id: string, opts: { url?: string; event?: string[]; description?: string; active?: boolean; inactive?: boolean }, command: Command) => {
      assertSomeChange(command);
      const active = opts.active ? true : opts.inactive ? false : null;
      const { updateWebhook } = await connect(command).request<{ updateWebhook: WebhookView }>(
        `mutation ($id: ID!, $url: String, $events: [String!], $description: String, $active: Boolean) {
          updateWebhook(id: $id, url: $url, events: $events, description: $description, active: $active) { ${WEBHOOK_FIELDS} } }`,
        { id, url: opts.url ?? null, events: opts.event ?? null, description: opts.description ?? null, active },
      );
      console.log(`updated webhook ${describe(updateWebhook)}`);
    });

  webhook
    .command('rotate <id>')
    .description('a new signing secret (printed once); the old one keeps signing beside it for --keep-previous hours')
    .option(
      '--keep-previous <hours>',
      'hours the old secret still signs, 0 to stop it at once (a leaked secret)',
      (raw) => (raw === '0' ? 0 : positiveInt(raw)),
      24,
    )
    .action(async (id: string, opts: { keepPrevious: number }, command: Command) => {
      const { rotateWebhookSecret } = await connect(command).request<{ rotateWebhookSecret: { secret: string; webhook: WebhookView } }>(
        `mutation ($id: ID!, $hours: Int) { rotateWebhookSecret(id: $id, keepPreviousFor: $hours) { secret webhook { ${WEBHOOK_FIELDS} } } }`,
        { id, hours: opts.keepPrevious },
      );
      console.log(`rotated webhook ${describe(rotateWebhookSecret.webhook)}`);
      printSecret(rotateWebhookSecret.secret);
    });

  webhook
    .command('delete <id>')
    .description('delete a webhook with its delivery log')
    .action(async (id: string, _opts: unknown, command: Command) => {
      await connect(command).request(`mutation ($id: ID!) { deleteWebhook(id: $id) }`, { id });
      console.log(`deleted webhook ${id}`);
    });

  webhook
    .command('deliveries <id>')
    .description("a webhook's deliveries, newest first")
    .addOption(new Option('--status <status>', 'only these').choices(['pending', 'succeeded', 'failed']))
    .option('-n, --limit <n>', 'how many', positiveInt, 20)
    .action(async (id: string, opts: { status?: string; limit: number }, command: Command) => {
      const { webhookDeliveries } = await connect(command).request<{ webhookDeliveries: { edges: { node: DeliveryView }[] } }>(
        `query ($id: ID!, $status: WebhookDeliveryStatus, $first: Int) { webhookDeliveries(webhookId: $id, status: $status, first: $first) {
          edges { node { id eventId eventType subject status attempts lastStatusCode lastError createdAt } } } }`,
        { id, status: opts.status?.toUpperCase() ?? null, first: opts.limit },
      );
      const rows = webhookDeliveries.edges.map((e) => e.node);
      if (!rows.length) console.log('no deliveries');
      for (const d of rows) {
        const answer = d.lastStatusCode ? `HTTP ${d.lastStatusCode}` : (d.lastError ?? '');
        console.log(`${d.id}  ${d.createdAt}  ${d.eventType.padEnd(22)}  ${d.status.padEnd(9)}  ${d.attempts} tries  ${d.subject}  ${answer}`.trimEnd());
      }
    });

  webhook
    .command('replay <deliveryId>')
    .description('queue a delivery again now, with the same event id (receivers dedupe by it)')
    .action(async (id: string, _opts: unknown, command: Command) => {
      const { replayWebhookDelivery } = await connect(command).request<{ replayWebhookDelivery: { id: string; status: string } }>(
        `mutation ($id: ID!) { replayWebhookDelivery(id: $id) { id status } }`,
        { id },
      );
      console.log(`queued delivery ${replayWebhookDelivery.id} again (${replayWebhookDelivery.status})`);
    });

  return webhook;
}
