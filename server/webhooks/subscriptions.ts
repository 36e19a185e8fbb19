// A team's webhooks: create (the signing secret is shown once), list, change, delete, rotate the secret. Only the
// writing members of the owning team and admins manage them (teams/ownership.ts); a webhook of another team answers
// like one that does not exist, and the refusal is audited.
import { and, asc, count, eq, inArray } from 'drizzle-orm';
import { audit } from '../audit/audit';
import { type AppAbility, assertCan } from '../auth/ability';
import type { WebhookConfig } from '../config';
import type { Db } from '../db/client';
import type { Identity } from '../db/tables/identities';
import { teamMembers } from '../db/tables/teams';
import { type Webhook, webhooks } from '../db/tables/webhooks';
import { badInput, notFound } from '../errors';
import { assertOwnerMay, OWNERSHIP_RULE, type Owner, ownerOf, ownershipAllows } from '../teams/ownership';
import { teamWithName } from '../teams/teams';
import { teamWriterRoles } from '../vocabulary';
import { checkWebhookUrl } from './allowlist';
import { newWebhookSecret } from './signature';

/** Who asks. */
export interface Caller {
  identity: Identity;
  ability: AppAbility;
}

export interface CreatedWebhook {
  webhook: Webhook;
  /** Shown once: only a new rotation shows a secret again. */
  secret: string;
}

export const MAX_WEBHOOKS_PER_TEAM = 100;
const MAX_EVENTS = 50;
const MAX_URL = 2048;
const MAX_DESCRIPTION = 1000;
const eventRe = /^(\*|[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)*(\.\*)?)$/;

/** Identities that manage a team's webhooks (its writing members); admins besides. */
export async function webhookManagers(db: Db, teamIds: string[]): Promise<Map<string, string[]>> {
  const rows = teamIds.length
    ? await db
        .select({ teamId: teamMembers.teamId, identityId: teamMembers.identityId })
        .from(teamMembers)
        .where(and(inArray(teamMembers.teamId, teamIds), inArray(teamMembers.role, [...teamWriterRoles])))
    : [];
  const byTeam = new Map<string, string[]>(teamIds.map((id) => [id, []]));
  for (const r of rows) byTeam.get(r.teamId)?.push(r.identityId);
  return byTeam;
}

function checkEvents(events: readonly string[]): string[] {
  const unique = [...new Set(events.map((e) => e.trim()))];
  if (!unique.length) throw badInput('events must name at least one event type: an exact name (run.failed), a prefix (run.*) or * for every event.');
  if (unique.length > MAX_EVENTS) throw badInput(`events may list at most ${MAX_EVENTS} event types; use a prefix such as run.* instead.`);
  const bad = unique.filter((e) => !eventRe.test(e));
  if (bad.length)
    throw badInput(
      `${bad.map((e) => `"${e}"`).join(', ')} ${bad.length > 1 ? 'are' : 'is'} not an event type: use dotted lower-case names (run.failed), a prefix (run.*) or *.`,
    );
  return unique;
}

function checkDescription(description: string | null | undefined): string {
  const d = (description ?? '').trim();
  if (d.length > MAX_DESCRIPTION) throw badInput(`description may have at most ${MAX_DESCRIPTION} characters.`);
  return d;
}

function checkUrl(url: string, config: WebhookConfig): string {
  if (url.length > MAX_URL) throw badInput(`url may have at most ${MAX_URL} characters.`);
  return checkWebhookUrl(url.trim(), config.allowlist, config.outboundAllow);
}

const owner = (caller: Caller): Owner => ownerOf(caller.identity, caller.ability);

/** The team by name, after checking that the caller manages its webhooks (FORBIDDEN, audited, otherwise). */
async function managedTeam(db: Db, caller: Caller, team: string, action: string, verb: string) {
  const found = await teamWithName(db, team);
  if (!found) throw notFound(`No team "${team}"; \`npx atelier team list\` shows the teams.`);
  await assertOwnerMay(
    db,
    owner(caller),
    { teamId: found.id, createdBy: null },
    { action, subject: `team:${found.name}`, label: `Team "${found.name}"` },
    verb,
  );
  return found;
}

/**
 * A webhook the caller manages. One of another team answers exactly like one that does not exist (NOT_FOUND); the
 * refusal is audited all the same.
 */
export async function managedWebhook(db: Db, caller: Caller, id: string, action: string): Promise<Webhook> {
  const [webhook] = await db.select().from(webhooks).where(eq(webhooks.id, id));
  const missing = notFound(`No webhook ${id}; \`webhooks(team: NAME)\` lists your team's webhooks.`);
  if (!webhook) throw missing;
  if (!(await ownershipAllows(db, owner(caller), webhook))) {
    await audit(db, { identity: caller.identity, action, decision: 'deny', subject: `webhook:${id}`, rule: OWNERSHIP_RULE });
    throw missing;
  }
  return webhook;
}

export async function createWebhook(
  db: Db,
  config: WebhookConfig,
  caller: Caller,
  input: { team: string; url: string; events: readonly string[]; description?: string | null },
): Promise<CreatedWebhook> {
  assertCan(caller.ability, 'create', 'Webhook', 'create webhooks');
  const team = await managedTeam(db, caller, input.team, 'webhook.create', 'add webhooks to');
  const events = checkEvents(input.events);
  const description = checkDescription(input.description);
  const url = checkUrl(input.url, config);
  const [{ n } = { n: 0 }] = await db.select({ n: count() }).from(webhooks).where(eq(webhooks.teamId, team.id));
  if (n >= MAX_WEBHOOKS_PER_TEAM) throw badInput(`Team "${team.name}" has ${n} webhooks, the most it may have; delete one first.`);
  const secret = newWebhookSecret();
  const [webhook] = await db.insert(webhooks).values({ teamId: team.id, url, events, description, secret, createdBy: caller.identity.id }).returning();
  return { webhook: webhook!, secret };
}

export async function listWebhooks(db: Db, caller: Caller, team: string): Promise<Webhook[]> {
  assertCan(caller.ability, 'read', 'Webhook', 'list webhooks');
  const found = await managedTeam(db, caller, team, 'webhook.list', 'list the webhooks of');
  return db.select().from(webhooks).where(eq(webhooks.teamId, found.id)).orderBy(asc(webhooks.createdAt), asc(webhooks.id));
}

export async function updateWebhook(
  db: Db,
  config: WebhookConfig,
  caller: Caller,
  id: string,
  input: { url?: string | null; events?: readonly string[] | null; description?: string | null; active?: boolean | null },
): Promise<Webhook> {
  assertCan(caller.ability, 'update', 'Webhook', 'change webhooks');
  await managedWebhook(db, caller, id, 'webhook.update');
  const set: Partial<typeof webhooks.$inferInsert> = { updatedAt: new Date() };
  if (input.events != null) set.events = checkEvents(input.events);
  if (input.description != null) set.description = checkDescription(input.description);
  if (input.url != null) set.url = checkUrl(input.url, config);
  if (input.active != null) set.active = input.active;
  const [updated] = await db.update(webhooks).set(set).where(eq(webhooks.id, id)).returning();
  await audit(db, { identity: caller.identity, action: 'webhook.update', decision: 'allow', subject: `webhook:${id}`, rule: OWNERSHIP_RULE });
  return updated!;
}

export async function deleteWebhook(db: Db, caller: Caller, id: string): Promise<string> {
  assertCan(caller.ability, 'update', 'Webhook', 'delete webhooks');
  await managedWebhook(db, caller, id, 'webhook.delete');
  await db.delete(webhooks).where(eq(webhooks.id, id)); // its deliveries and their log go with it
  await audit(db, { identity: caller.identity, action: 'webhook.delete', decision: 'allow', subject: `webhook:${id}`, rule: OWNERSHIP_RULE });
  return id;
}

/** The longest a rotated-out secret may keep signing. */
export const MAX_SECRET_OVERLAP_HOURS = 7 * 24;

/**
 * A new secret. The old one keeps signing beside it for `keepPreviousHours` (each delivery then carries both
 * signatures), so receivers can switch without dropping a delivery; 0 stops it at once (a leaked secret).
 */
export async function rotateWebhookSecret(db: Db, caller: Caller, id: string, keepPreviousHours = 24): Promise<CreatedWebhook> {
  assertCan(caller.ability, 'update', 'Webhook', 'rotate webhook secrets');
  if (!Number.isInteger(keepPreviousHours) || keepPreviousHours < 0 || keepPreviousHours > MAX_SECRET_OVERLAP_HOURS) {
    throw badInput(
      `keepPreviousFor: ${keepPreviousHours} is not a whole number of hours from 0 to ${MAX_SECRET_OVERLAP_HOURS}; use 0 to stop the old secret at once.`,
    );
  }
  const current = await managedWebhook(db, caller, id, 'webhook.rotate-secret');
  const secret = newWebhookSecret();
  const overlap = keepPreviousHours > 0;
  const expiresAt = overlap ? new Date(Date.now() + keepPreviousHours * 3_600_000) : null;
  const [webhook] = await db
    .update(webhooks)
    .set({ secret, previousSecret: overlap ? current.secret : null, previousSecretExpiresAt: expiresAt, updatedAt: new Date() })
    .where(eq(webhooks.id, id))
    .returning();
  await audit(db, {
    identity: caller.identity,
    action: 'webhook.rotate-secret',
    decision: 'allow',
    subject: `webhook:${id}`,
    rule: OWNERSHIP_RULE,
    details: { previousSignsUntil: expiresAt?.toISOString() ?? null },
  });
  return { webhook: webhook!, secret };
}

export const webhooksByIds = (db: Db, ids: string[]): Promise<Webhook[]> =>
  ids.length ? db.select().from(webhooks).where(inArray(webhooks.id, ids)) : Promise.resolve([]);
