// Inbound hooks of HTTP triggers (`POST /hooks/trigger/NAME`): who may fire one (a bearer token whose holder may
// start the workflow's runs, or an HMAC-SHA256 signature under the trigger's secret of `TIMESTAMP.DELIVERY.BODY`,
// fresh within 5 minutes, its delivery id required so a replay within the window is the same signal), the payload mapped onto the run's parameters and checked against the workflow before
// anything is written, and the signal recorded, once per delivery id.
import { createHmac, randomUUID, timingSafeEqual } from 'node:crypto';
import { subject } from '@casl/ability';
import { and, eq } from 'drizzle-orm';
import { audited } from '../audit/audit';
import type { AppAbility } from '../auth/ability';
import { refusal } from '../auth/refuse';
import type { Db } from '../db/client';
import type { Identity } from '../db/tables/identities';
import { triggerFirings, type WorkflowTrigger, workflowTriggers } from '../db/tables/triggers';
import { workflows, workflowVersions } from '../db/tables/workflows';
import { AtelierError, badInput } from '../errors';
import { freshnessProblem } from '../modules/deliveries';
import { hookSubject, recordSignal } from '../signals/signals';
import { moreGuarded } from '../vocabulary';
import { resolveRunParameters } from '../workflows/spec';
import { mapParameters } from './mapping';

const deliveryRe = /^[A-Za-z0-9._:-]{1,128}$/;

/** The signature a sender puts in `X-Atelier-Signature`: `sha256=HEX` of `TIMESTAMP.DELIVERY.BODY`. */
export function signHook(secret: string, timestamp: string, delivery: string, body: Buffer | string): string {
  return `sha256=${createHmac('sha256', secret).update(`${timestamp}.${delivery}.`).update(body).digest('hex')}`;
}

export interface HookHeaders {
  signature?: string;
  timestamp?: string;
  delivery?: string;
}

/** The HTTP trigger named, or null (no such trigger, or not an HTTP one: answered alike). */
export async function httpTrigger(db: Db, name: string): Promise<WorkflowTrigger | null> {
  const [trigger] = await db
    .select()
    .from(workflowTriggers)
    .where(and(eq(workflowTriggers.name, name), eq(workflowTriggers.kind, 'HTTP')));
  return trigger ?? null;
}

/** Why a signed hook is refused, or null. A missing trigger is refused exactly like a wrong signature (no oracle). */
export function hookSignatureProblem(trigger: WorkflowTrigger | null, body: Buffer, headers: HookHeaders, now = Date.now()): string | null {
  const early = hookHeadersProblem(headers, now);
  if (early) return early;
  const { signature, timestamp, delivery } = headers as Required<HookHeaders>;
  // Compared in constant time even when there is no trigger, so timing tells nothing of which names exist.
  const expected = Buffer.from(signHook(trigger?.secret ?? 'no-trigger', timestamp, delivery, body));
  const given = Buffer.from(signature);
  const same = given.length === expected.length && timingSafeEqual(given, expected);
  if (!same || !trigger) return 'the signature does not match the timestamp, delivery id and body under this trigger’s secret';
  return null;
}

/**
 * Why a signed hook's headers alone are refused (missing, malformed or stale), or null: checked before its body is
 * read, and alike whichever trigger is named, so a sender without them makes the server read nothing.
 */
export function hookHeadersProblem(headers: HookHeaders, now = Date.now()): string | null {
  const { signature, timestamp, delivery } = headers;
  if (!signature?.startsWith('sha256=')) return 'no bearer token and no X-Atelier-Signature header (sha256=HEX)';
  if (!timestamp || !/^\d{1,12}$/.test(timestamp)) return 'the X-Atelier-Timestamp header (Unix seconds) is missing or not a number';
  // Without a delivery id the signature covers nothing a replay would repeat: a captured request sent again within
  // the window would be a new signal (and a new run) each time. With one, the same id is the same signal.
  if (!delivery || !deliveryRe.test(delivery))
    return 'the X-Atelier-Delivery header (a unique id per delivery, such as a UUID: letters, digits, ".", "_", ":" or "-", at most 128) is missing or malformed, and a signature must cover one';
  return freshnessProblem(timestamp, now);
}

/** Refuses (audited) a token holder who may not start the trigger's workflow in its run domain. */
export async function assertMayFire(db: Db, ability: AppAbility, identity: Identity, trigger: WorkflowTrigger): Promise<void> {
  const [workflow] = await db.select().from(workflows).where(eq(workflows.id, trigger.workflowId));
  const domain = moreGuarded(workflow!.domain, trigger.parametersDomain);
  if (!ability.can('start', subject('Run', { domain })))
    throw refusal(
      {
        identity,
        action: 'trigger.fire',
        subject: `trigger:${trigger.name}`,
        rule: 'firing a trigger needs "start" on Run in its domain',
        details: { domain },
      },
      `${identity.name} may not start ${domain} runs, so may not fire trigger "${trigger.name}". Use a token of a team granted ${domain}, or sign the hook with the trigger's secret.`,
    );
}

/**
 * Maps the payload and checks the parameters against the workflow's latest version (a 400 naming the parameter,
 * nothing written), then records the signal; the same delivery id again is the same signal.
 */
export async function receiveHook(db: Db, trigger: WorkflowTrigger, payload: unknown, delivery: string | undefined): Promise<{ signalId: string }> {
  if (trigger.paused)
    throw new AtelierError(
      'CONFLICT',
      `Trigger "${trigger.name}" is paused; resume it (\`atelier trigger resume ${trigger.name}\`) first. Nothing was recorded.`,
    );
  if (delivery !== undefined && !deliveryRe.test(delivery))
    throw badInput('The X-Atelier-Delivery header is malformed (letters, digits, ".", "_", ":" or "-", at most 128).');
  const parameters = mapParameters(trigger.parameters, trigger.parameterMap, payload);
  const [workflow] = await db.select().from(workflows).where(eq(workflows.id, trigger.workflowId));
  const [version] = await db
    .select()
    .from(workflowVersions)
    .where(and(eq(workflowVersions.workflowId, workflow!.id), eq(workflowVersions.version, workflow!.latestVersion)));
  try {
    resolveRunParameters(version!.spec, parameters);
  } catch (error) {
    if (!(error instanceof AtelierError)) throw error;
    throw badInput(`The payload does not fit workflow "${workflow!.name}": ${error.message} Nothing was started.`, error.details);
  }
  const signalId = await audited(db, () =>
    recordSignal(db, {
      type: 'hook.received',
      team: trigger.teamId,
      subject: hookSubject(trigger.id),
      key: `hook:${trigger.id}:${delivery ?? randomUUID()}`,
      payload: payload !== null && typeof payload === 'object' && !Array.isArray(payload) ? (payload as Record<string, unknown>) : { value: payload },
    }),
  );
  return { signalId };
}

/** The firing of a signal for a trigger, once decided (polled briefly so a 202 can name the run). */
export async function firingOf(db: Db, triggerId: string, signalId: string): Promise<{ outcome: string; runId: string | null; message: string | null } | null> {
  const [row] = await db
    .select({ outcome: triggerFirings.outcome, runId: triggerFirings.runId, message: triggerFirings.message })
    .from(triggerFirings)
    .where(and(eq(triggerFirings.triggerId, triggerId), eq(triggerFirings.signalId, signalId)));
  return row ?? null;
}
