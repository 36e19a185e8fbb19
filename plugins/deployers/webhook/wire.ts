// What the webhook deployer and the other team's service say to each other: the bodies it POSTs, and the checked
// shape of the service's answers (its view of a deployment). Answers are validated with ajv (the project's schema
// library) so a malformed one becomes an error naming the field, never a crash or a half-read status.
import { Ajv, type ErrorObject } from 'ajv';
import type { Deployment, DeploymentStatus, HeldDeployment, Revision, RevisionStatus, ServingStats, TrafficSplit } from '../../deployer-sdk';

/** The call a request carries; each is POSTed to `<url>/deployments/<id>/<action>`. */
export type WebhookAction = 'apply' | 'traffic' | 'rollback' | 'delete';

/** A revision as sent: everything but the files (the service fetches the version by its ref and digest). */
export interface WireRevision {
  number: number;
  modelVersion: { ref: string; digest: string; files?: string };
  serve: Revision['serve'];
  env?: Record<string, string>;
  resources?: Revision['resources'];
}

/** The body of every POST: the deployment, what to do, and the idempotency key the same call keeps on every retry. */
export interface WebhookRequestBody {
  deployment: Deployment | { id: string };
  revision?: WireRevision;
  split?: TrafficSplit;
  toRevision?: number;
  requestId: string;
  sentAt: string;
}

/** A revision's files travel only when they are a URI the service can reach (`s3://…`, `https://…`), never a local path. */
export function wireRevision(revision: Revision): WireRevision {
  const { files, ref, digest } = revision.modelVersion;
  return {
    number: revision.number,
    modelVersion: typeof files === 'string' && /^[a-z][a-z0-9+.-]*:\/\//i.test(files) ? { ref, digest, files } : { ref, digest },
    serve: revision.serve,
    ...(revision.env ? { env: revision.env } : {}),
    ...(revision.resources ? { resources: revision.resources } : {}),
  };
}

/** The service's view of a deployment: the answer to every POST but delete, and to `GET <url>/deployments/<id>`. */
const statusSchema = {
  type: 'object',
  required: ['ready', 'url', 'traffic', 'message', 'revisions'],
  properties: {
    ready: { type: 'boolean' },
    url: { type: ['string', 'null'] },
    traffic: {
      type: 'object',
      propertyNames: { pattern: '^[1-9][0-9]{0,8}$' },
      additionalProperties: { type: 'integer', minimum: 0, maximum: 100 },
    },
    message: { type: 'string' },
    revisions: {
      type: 'array',
      items: {
        type: 'object',
        required: ['number', 'modelVersion', 'health'],
        properties: {
          number: { type: 'integer', minimum: 1 },
          modelVersion: { type: 'string' },
          health: { enum: ['STARTING', 'READY', 'RESTARTING', 'FAILED'] },
          restarts: { type: 'integer', minimum: 0 },
          message: { type: ['string', 'null'] },
        },
      },
    },
    // Optional: what the service measured of each revision's traffic (ServingStats), recorded as serving observations.
    serving: {
      type: 'object',
      required: ['epoch', 'firstMs', 'growth', 'revisions'],
      properties: {
        epoch: { type: 'string', minLength: 1, maxLength: 200 },
        firstMs: { type: 'number', exclusiveMinimum: 0, maximum: 60_000 },
        growth: { type: 'number', exclusiveMinimum: 1, maximum: 10 },
        revisions: {
          type: 'object',
          maxProperties: 100,
          propertyNames: { pattern: '^[1-9][0-9]{0,8}$' },
          additionalProperties: {
            type: 'object',
            required: ['requests', 'errors', 'buckets'],
            properties: {
              requests: { type: 'integer', minimum: 0 },
              errors: { type: 'integer', minimum: 0 },
              buckets: { type: 'array', maxItems: 200, items: { type: 'integer', minimum: 0 } },
            },
          },
        },
      },
    },
  },
} as const;

/** A refusal's body: `{code?, message}`; anything else is read as text. */
const refusalSchema = {
  type: 'object',
  required: ['message'],
  properties: { code: { type: 'string' }, message: { type: 'string' } },
} as const;

/** The answer to `GET <url>/deployments?installation=<id>`: the deployments the service holds for that installation. */
const listSchema = {
  type: 'object',
  required: ['deployments'],
  properties: {
    deployments: {
      type: 'array',
      items: {
        type: 'object',
        required: ['id'],
        properties: { id: { type: 'string', minLength: 1, maxLength: 128 }, name: { type: 'string', maxLength: 200 } },
      },
    },
  },
} as const;

const ajv = new Ajv({ allErrors: true, strict: true });
const validateStatus = ajv.compile(statusSchema);
const validateList = ajv.compile<{ deployments: HeldDeployment[] }>(listSchema);
const validateRefusal = ajv.compile<{ code?: string; message: string }>(refusalSchema);

/** `revisions[0].health must be equal to one of the allowed values (…)`: the field first, for people. */
function describe(errors: ErrorObject[] | null | undefined): string {
  return (errors ?? [])
    .map((e) => {
      const field = e.instancePath
        .replace(/^\//, '')
        .split('/')
        .map((part) => (/^\d+$/.test(part) ? `[${part}]` : `.${part}`))
        .join('')
        .replace(/^\./, '');
      const allowed = e.keyword === 'enum' ? ` (${(e.params as { allowedValues: unknown[] }).allowedValues.join(', ')})` : '';
      const missing = e.keyword === 'required' ? `${field ? `${field}.` : ''}${(e.params as { missingProperty: string }).missingProperty} is missing` : null;
      return missing ?? `${field || 'the answer'} ${e.message ?? 'is malformed'}${allowed}`;
    })
    .join('; ');
}

/** The status in an answer, or why it is malformed (naming the field). */
export function parseStatus(deploymentId: string, answer: unknown): { status: DeploymentStatus } | { problem: string } {
  if (!validateStatus(answer)) return { problem: describe(validateStatus.errors) };
  const a = answer as {
    ready: boolean;
    url: string | null;
    traffic: Record<string, number>;
    message: string;
    revisions: { number: number; modelVersion: string; health: RevisionStatus['health']; restarts?: number; message?: string | null }[];
    serving?: ServingStats;
  };
  const traffic: TrafficSplit = {};
  for (const [rev, pct] of Object.entries(a.traffic)) if (pct > 0) traffic[Number(rev)] = pct;
  const revisions: RevisionStatus[] = a.revisions
    .map((r) => ({ number: r.number, modelVersion: r.modelVersion, health: r.health, restarts: r.restarts ?? 0, message: r.message ?? null }))
    .sort((x, y) => x.number - y.number);
  const status: DeploymentStatus = { deploymentId, ready: a.ready, url: a.url, traffic, message: a.message, revisions };
  return { status: a.serving ? { ...status, serving: a.serving } : status };
}

/** The deployments in a list answer, or why it is malformed (naming the field). */
export function parseList(answer: unknown): { deployments: HeldDeployment[] } | { problem: string } {
  if (!validateList(answer)) return { problem: describe(validateList.errors) };
  return { deployments: answer.deployments.map((d) => (d.name === undefined ? { id: d.id } : { id: d.id, name: d.name })) };
}

/** A refusal's code and message from its body (JSON `{code, message}`, else the text itself, shortened). */
export function parseRefusal(text: string): { code?: string; message: string } {
  try {
    const body: unknown = JSON.parse(text);
    if (validateRefusal(body)) return body;
  } catch {
    // not JSON: the text is the message
  }
  const trimmed = text.trim();
  return { message: trimmed.length > 500 ? `${trimmed.slice(0, 500)}…` : trimmed || 'no message' };
}
