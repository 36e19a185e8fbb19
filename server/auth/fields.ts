// The fields of every subject the API returns, named one by one: CASL rules list them explicitly, and a field
// that is in no list is in no rule, so nobody may read it (a schema test fails when a GraphQL field is missing
// here). `data` fields carry what a run read or produced (parameters, outputs, logs, metrics, messages) or what
// decides it (a workflow's spec, with its parameter defaults): they are readable only in the domains the caller's
// teams are granted. `meta` fields say that something exists and how it went, and are readable by every role that
// reads the subject: a meta field is never computed from a data field (derived data is data). `own` fields are the
// creator's own (a run's idempotency key): readable by the identity that created the object (and admins) only.

export const subjectFields = {
  Run: {
    meta: [
      'id',
      'status',
      'trigger',
      'domain',
      'cacheNamespace',
      'refreshCache',
      'priority',
      // built from node names and statuses only (orchestrator/outcomes.ts failureSummary), never a task's message
      'message',
      'sourceRunId',
      'sourceRun',
      'parentRunId',
      'childRuns',
      'createdAt',
      'startedAt',
      'finishedAt',
      'workflow',
      'workflowVersion',
      'createdBy',
      'tasks',
      // what the caller may do to it (schema/types/viewer-can.ts): decided by the ability, never by run data
      'viewerCan',
      'schedule',
      // which trigger and signal started it (trigger EVENT): ids and kinds, never the signal's payload
      'triggeredBy',
      // the experiment it is grouped in and its display name: labels, never computed from run data
      'experiment',
      'name',
    ],
    // tags and notes are written by people about what a run did (a dataset version, a score): run data
    data: ['parameters', 'events', 'metrics', 'tags', 'note', 'noteBy', 'noteAt'],
    own: ['idempotencyKey'],
  },
  Task: {
    meta: [
      'id',
      'node',
      'run',
      'status',
      'kind',
      'moduleRef',
      'moduleVersion',
      'workflowRef',
      'childRun',
      'mapParent',
      'mapIndex',
      'dependsOn',
      'triggerRule',
      'retryAt',
      'reusedFromTaskId',
      'attempt',
      'maxAttempts',
      'executor',
      'pool',
      'host',
      'reason',
      'exitCode',
      'progress',
      'queuedAt',
      'startedAt',
      'finishedAt',
      'durationMs',
      'executionMs',
      'provisioningMs',
      'gpus',
      'hotCluster',
      'waitingReason',
      'cacheHit',
      // a cache hit (CacheHit is a task seen as a hit)
      'sourceTask',
      'sourceRun',
      'savedMs',
    ],
    // cacheKey: a hash of the task's parameters and inputs, so a guess's key (from cachePreview) would confirm it.
    data: ['parameters', 'outputs', 'message', 'progressMessage', 'attempts', 'metrics', 'metricHistory', 'logs', 'cacheKey'],
  },
  Workflow: {
    meta: [
      'id',
      'name',
      'description',
      'domain',
      'createdAt',
      'createdBy',
      'team',
      'latestVersion',
      'versions',
      'schedules',
      'triggers',
      'version',
      'workflow',
      'viewerCan',
    ],
    // A version's spec holds literal parameter defaults and task parameters (and its digest is a hash of them, an
    // oracle for a guess): the workflow's domain's data.
    data: ['spec', 'digest'],
  },
  Schedule: {
    meta: [
      'id',
      'name',
      'workflow',
      'cron',
      'timeZone',
      'paused',
      'overlap',
      'catchUp',
      'catchUpLimit',
      'startAt',
      'endAt',
      'lastFireTime',
      'nextFireTimes',
      'fires',
      'createdAt',
      'createdBy',
      'team',
      'updatedAt',
      'fireTime',
      'outcome',
      'run',
      'message',
      'viewerCan',
    ],
    data: ['parameters'],
  },
  Module: {
    meta: ['id', 'namespace', 'name', 'fullName', 'description', 'createdAt', 'versions', 'tags', 'latestVersion', 'owner', 'usage', 'tagHistory', 'viewerCan'],
    data: [],
  },
  ModuleVersion: {
    meta: [
      'id',
      'version',
      'digest',
      'sizeBytes',
      'manifest',
      'entrypoint',
      'runtime',
      'parameterSchema',
      'source',
      'createdAt',
      'module',
      'ref',
      'publishedBy',
      'tags',
      'usage',
      'runs',
      'testResult',
      'deprecated',
      'deprecatedAt',
      'deprecationReason',
    ],
    data: [],
  },
  Experiment: { meta: ['id', 'name', 'description', 'workflow', 'createdBy', 'createdAt'], data: [] },
  Team: { meta: ['id', 'name', 'description', 'members', 'namespaces', 'domains'], data: [] },
  Namespace: { meta: ['name', 'team'], data: [] },
  Identity: { meta: ['id', 'name', 'kind', 'role', 'owner'], data: [] },
  Dataset: {
    meta: ['id', 'namespace', 'name', 'fullName', 'domain', 'description', 'createdAt', 'versions', 'columns', 'catalog', 'viewerCan', 'freshness'],
    data: [],
  },
  Declassification: { meta: ['id', 'dataset', 'column', 'from', 'to', 'reason', 'state', 'requestedBy', 'decidedBy', 'createdAt', 'viewerCan'], data: [] },
  AuditEvent: { meta: ['id', 'at', 'identity', 'action', 'decision', 'subject', 'rule', 'details'], data: [] },
  ExecutorHost: {
    meta: [
      'id',
      'name',
      'executors',
      'pools',
      'capacity',
      'running',
      'gpus',
      'hotClusters',
      'hotClusterExecutors',
      'version',
      'startedAt',
      'lastSeenAt',
      'live',
    ],
    data: [],
  },
  HotCluster: {
    meta: ['id', 'name', 'executor', 'pool', 'spec', 'state', 'message', 'idleTimeoutMs', 'lastUsedAt', 'createdBy', 'team', 'createdAt', 'endedAt'],
    data: [],
  },
  // A registered model says what exists and who owns it; nothing of it is computed from run data.
  Model: {
    meta: [
      'id',
      'namespace',
      'name',
      'fullName',
      'description',
      'owner',
      'requirements',
      'versions',
      'version',
      'aliases',
      'aliasHistory',
      'promotions',
      // the deployments of the model the caller may read (server/deployments/access.ts)
      'deployments',
      'createdBy',
      'createdAt',
      'viewerCan',
    ],
    data: [],
  },
  // A version's files, signature, metadata, metrics and lineage come from its run: the run's domain's run data.
  // Its label is computed from column labels (not from data values), as a dataset column's label is.
  ModelVersion: {
    meta: [
      'id',
      'model',
      'version',
      'ref',
      'digest',
      'flavor',
      'domain',
      'label',
      'aliases',
      'deprecated',
      'deprecatedAt',
      'deprecationReason',
      // the deployments serving it that the caller may read (server/deployments/access.ts)
      'deployments',
      'createdBy',
      'createdAt',
    ],
    data: ['files', 'signature', 'metadata', 'metrics', 'lineage', 'cacheKey', 'task', 'run'],
  },
  // Triggers (server/triggers/) and their firings (TriggerFiring, checked with its trigger's domain): the fixed run
  // parameters and a signal's payload (an inbound hook's body) are the trigger's domain's data. The HMAC secret is in
  // no list: it is shown once, by the mutation's own type.
  Trigger: {
    meta: [
      'id',
      'name',
      'workflow',
      'kind',
      'source',
      'parameterMap',
      'overlap',
      'maxRunsPerMinute',
      'paused',
      'hookPath',
      'firings',
      'viewerCan',
      'createdBy',
      'team',
      'createdAt',
      'updatedAt',
      'trigger',
      'outcome',
      'run',
      'message',
      'decidedAt',
      'signalId',
      'signalType',
      'signalSubject',
      'signalAt',
    ],
    data: ['parameters', 'signalPayload'],
  },
  // A team's webhooks and their deliveries: readable only by the managers of the owning team (server/auth/ability.ts).
  // The signing secret is in no list: no rule covers it, so nobody reads it (it is shown once, by the mutation's own type).
  Webhook: { meta: ['id', 'team', 'url', 'events', 'description', 'active', 'createdBy', 'createdAt', 'updatedAt', 'previousSecretExpiresAt'], data: [] },
  // `body` is what was sent: an event's meta fields only (server/webhooks/emit.ts).
  WebhookDelivery: {
    meta: [
      'id',
      'eventId',
      'eventType',
      'subject',
      'webhook',
      'status',
      'attempts',
      'nextAttemptAt',
      'lastStatusCode',
      'lastError',
      'deliveredAt',
      'createdAt',
      'body',
      'log',
    ],
    data: [],
  },
  CacheEntry: { meta: ['key', 'module', 'scope', 'sourceTaskId', 'sourceRunId', 'durationMs', 'hits', 'createdAt', 'lastUsedAt'], data: [] },
} as const satisfies Record<string, { meta: readonly string[]; data: readonly string[]; own?: readonly string[] }>;

export type FieldSubject = keyof typeof subjectFields;
export const fieldSubjects = Object.keys(subjectFields) as FieldSubject[];

export const metaFields = (s: FieldSubject): string[] => [...subjectFields[s].meta];
export const dataFields = (s: FieldSubject): string[] => [...subjectFields[s].data];
export const ownFields = (s: FieldSubject): string[] => [...((subjectFields[s] as { own?: readonly string[] }).own ?? [])];
export const allFields = (s: FieldSubject): string[] => [...subjectFields[s].meta, ...subjectFields[s].data, ...ownFields(s)];
