// The schema's authorization is total: every object type the API returns is guarded by an instance check or is a
// value reached only through a guarded parent; every field of a guarded type is named in the CASL rules' explicit
// fields; every rule of every role lists its fields; and a scoped token narrows what its identity may do.
import { subject } from '@casl/ability';
import { isObjectType } from 'graphql';
import { describe, expect, it } from 'vitest';
import { guards } from '../../schema/auth';
import { schema } from '../../schema/index';
import { defineAbilityFor, parseScopes } from '../../server/auth/ability';
import { allFields, dataFields, fieldSubjects } from '../../server/auth/fields';

/** Parts of a guarded object, results of a mutation the caller was allowed to make, or pages of guarded objects. */
const valueTypes: Record<string, string> = {
  Query: 'root',
  Mutation: 'root',
  Subscription: 'root',
  PageInfo: 'a page of guarded runs',
  QueryRunsConnection: 'a page of guarded runs',
  QueryRunsConnectionEdge: 'a page of guarded runs',
  ClassificationLabel: 'part of a Dataset column or a Declassification',
  DatasetColumn: 'part of a Dataset',
  DatasetVersion: 'part of a Dataset',
  DatasetPartition: 'part of a DatasetVersion',
  DatasetVersionColumn: 'part of a DatasetVersion',
  DatasetPreview: 'rows filtered by the column-level ability (server/governance/preview.ts)',
  DatasetPreviewGroup: 'groups filtered by the column-level ability',
  DatasetProfile: 'columns filtered by the column-level ability (server/governance/profiles.ts)',
  DatasetColumnProfile: 'part of a DatasetProfile, a column the caller may preview',
  DatasetDrift: 'columns filtered by the column-level ability (server/monitoring/drift.ts)',
  ColumnDrift: 'part of a DatasetDrift, a column the caller may preview',
  DatasetFreshness: 'part of a Dataset',
  DatasetCatalogState: 'part of a Dataset',
  LogLine: 'part of Task.logs',
  RunTag: 'part of Run.tags (a data field)',
  QueryExperimentsConnection: 'a page of guarded experiments',
  ExperimentTag: 'part of an Experiment (a meta field)',
  ExperimentViewerCan: 'part of an Experiment (a meta field): the caller’s own permissions',
  QuerySearchRunsConnection: 'a page of guarded runs',
  RunComparison: 'runs the caller may read the data of (server/tracking/compare.ts)',
  RunMetricSummary: 'part of a RunComparison',
  ComparedParam: 'part of a RunComparison',
  ComparedMetric: 'part of a RunComparison',
  ComparedSeries: 'part of a RunComparison',
  MetricSeriesPoint: 'part of a ComparedSeries',
  MetricHistory: 'the value of Task.metricHistory, a data field of a guarded Task',
  MetricPoint: 'part of a MetricHistory',
  TaskMetricSummary: 'the value of Run.metrics and Task.metrics, data fields of a guarded Run or Task',
  QuerySearchRunsConnectionEdge: 'a page of guarded runs',
  ModelRequirement: 'part of a Model',
  ModelAlias: 'part of a Model (its version is a guarded ModelVersion)',
  ModelAliasEvent: 'part of Model.aliasHistory',
  ModelPromotion: 'part of Model.promotions: which version, alias and who (no run data)',
  ModelFile: 'part of ModelVersion.files (a data field)',
  ModelLineage: 'the value of ModelVersion.lineage, a data field of a guarded ModelVersion',
  ModelLineageDataset: 'part of a ModelLineage',
  ModelLineageColumn: 'part of a ModelLineageDataset',
  ModelLineageModel: 'part of a ModelLineage',
  DeclaredDataset: 'part of a ModelLineage or of Task.declaredDatasets (data fields)',
  ModelLineageMetric: 'part of a ModelLineage or ModelVersion.metrics (data fields)',
  RegisteredModelVersion: 'the result of registerModelVersion (a guarded ModelVersion)',
  ModelAliasMove: 'the result of an alias move (guarded ModelVersions)',
  QueryExperimentsConnectionEdge: 'a page of guarded experiments',
  TaskAttempt: 'part of Task.attempts',
  ModuleTag: 'part of a Module',
  ModuleTagEvent: 'part of a Module',
  ModuleUsage: 'part of a Module or ModuleVersion',
  ModuleTestResult: 'part of a ModuleVersion',
  ModuleTagMove: 'result of a tag move the caller made',
  PublishModuleVersionResult: 'result of a publish the caller made',
  CreateWorkflowResult: 'result of a workflow the caller created',
  IssuedToken: 'result of an admin-only mutation',
  TeamMember: 'part of a Team',
  ExecutorPool: 'a summary of guarded executor hosts',
  CacheKeyDifference: 'part of a CacheExplanation',
  CacheExplanation: 'about a task the caller reads (checked in its resolver)',
  CachePreviewTask: 'about a workflow the caller reads',
  CacheStats: 'aggregates the caller reads (checked in its resolver)',
  CacheSavingsBucket: 'aggregates the caller reads (checked in its resolver)',
  CostFigures: 'aggregates of the caller teams, or all for an admin (checked in its resolver)',
  Permission: 'part of a viewerCan answer',
  RunViewerCan: 'part of a Run',
  WorkflowViewerCan: 'part of a Workflow',
  ScheduleViewerCan: 'part of a Schedule',
  ScheduleBackfill: 'result of a backfill the caller made (a guarded Schedule and fire times)',
  ModuleViewerCan: 'part of a Module',
  ModuleTagViewerCan: 'part of a ModuleTag (part of a Module)',
  DeclassificationViewerCan: 'part of a Declassification',
  DatasetViewerCan: 'part of a Dataset',
  ModelViewerCan: 'part of a Model',
  AlertViewerCan: 'part of an Alert',
  MonitorViewerCan: 'part of a Monitor',
  TriggerViewerCan: 'part of a Trigger',
  ModelPromotionViewerCan: 'part of a ModelPromotion (part of a Model, or the promotions query)',
  RunStatusEvent: 'an event of a run whose events the subscription checked',
  RunFeedListening: 'says only that the subscription (checked for read:Run) listens, and when',
  TaskStatusEvent: 'an event of a run whose events the subscription checked',
  TaskProgressEvent: 'an event of a run whose events the subscription checked',
  TaskLogEvent: 'an event of a run whose events the subscription checked',
  TaskMetricEvent: 'an event of a run whose events the subscription checked',
  RegistryEvent: 'an event of a model the subscription checked the caller may read, event by event',
  DeploymentChange: 'a change of a deployment the subscription checked the caller may read (as `deployments` does), event by event',
  ExecutorsChange: 'ids of executor hosts and names of hot clusters that changed, to a subscription checked for read:ExecutorHost',
  WebhookAttempt: 'part of a WebhookDelivery',
  CreatedWebhook: 'result of a webhook the caller created or whose secret it rotated',
  CreatedTrigger: 'result of a trigger the caller created or whose HTTP secret it rotated (a guarded Trigger and the secret, shown once)',
  QueryWebhookDeliveriesConnection: 'a page of guarded webhook deliveries',
  QueryWebhookDeliveriesConnectionEdge: 'a page of guarded webhook deliveries',
  MonitorTarget: 'part of a Monitor or Alert the caller may read (server/monitoring/access.ts)',
  RecordedObservations: 'result of a recordObservations the caller was allowed to make',
  ObservationGroup: 'part of metricSeries, of a target the caller may read (checked in its resolver)',
  ObservationBucket: 'part of an ObservationGroup',
  Monitor: 'returned only after server/monitoring/monitors.ts findMonitor or monitorsOf checked the caller may read it (or through its Alert)',
  Alert: 'returned only after server/monitoring/alerts.ts checked the caller may read it (its team, or readers of its target), or through its Monitor',
  MonitorRule: 'part of a Monitor (or a Deployment’s RolloutGate)',
  Deployment: 'returned only after server/deployments/deployments.ts findDeployment or listDeployments checked the caller may read it (its team, or admins)',
  DeploymentRevision: 'part of a Deployment',
  RevisionServing: 'part of a Deployment',
  DeploymentTraffic: 'part of a Deployment',
  DeploymentRollout: 'part of a Deployment',
  RolloutGateResult: 'part of a DeploymentRollout',
  DeploymentFallback: 'part of a Deployment',
  DeploymentEvent: 'part of a Deployment',
  DeploymentViewerCan: 'part of a Deployment',
  RolloutPolicy: 'part of a Deployment',
  RolloutStep: 'part of a Deployment’s RolloutPolicy',
  RolloutGate: 'part of a Deployment’s RolloutPolicy',
  MonitorEvent: 'part of Monitor.history or Alert.events',
  MonitorAction: 'part of a Monitor',
  AlertActionTaken: 'part of an Alert (Alert.actions)',
};

describe('schema authorization', () => {
  const objectTypes = Object.values(schema.getTypeMap()).filter((t) => isObjectType(t) && !t.name.startsWith('__')) as import('graphql').GraphQLObjectType[];

  it('guards every object type with an instance check, or names it a value of a guarded parent', () => {
    const unguarded = objectTypes.filter((t) => !guards.has(t.name) && !valueTypes[t.name]).map((t) => t.name);
    expect(unguarded).toEqual([]);
    for (const name of guards.keys()) expect(schema.getType(name), `${name} is guarded but not in the schema`).toBeTruthy();
  });

  it('names every field of a guarded type in the explicit fields of its CASL subject', () => {
    const missing: string[] = [];
    for (const type of objectTypes.filter((t) => guards.has(t.name))) {
      const listed = new Set(allFields(guards.get(type.name)!.subject));
      for (const field of Object.keys(type.getFields())) if (!listed.has(field)) missing.push(`${type.name}.${field}`);
    }
    expect(missing).toEqual([]);
  });

  it('gives every field of a guarded type a scope (the per-field check)', () => {
    for (const type of objectTypes.filter((t) => guards.has(t.name))) {
      for (const [name, field] of Object.entries(type.getFields())) {
        const options = (field.extensions as { pothosOptions?: { authScopes?: unknown } }).pothosOptions;
        expect(options?.authScopes, `${type.name}.${name}`).toBeTypeOf('function');
      }
    }
  });

  it('lists explicit fields in every rule of every role, with and without grants', () => {
    for (const role of ['admin', 'member', 'viewer'] as const) {
      for (const domains of [[], ['adhoc', 'production']] as const) {
        const ability = defineAbilityFor({ id: 'x', role }, { domains: [...domains] });
        expect(ability.rules.length).toBeGreaterThan(0);
        for (const rule of ability.rules) expect(rule.fields, `${role} ${rule.action} ${rule.subject}`).toBeTruthy();
      }
    }
  });

  it('lets run data be read only in granted domains, and the audit log only by admins', () => {
    const member = defineAbilityFor({ id: 'm', role: 'member' }, { domains: [] });
    const granted = defineAbilityFor({ id: 'm', role: 'member' }, { domains: ['production'] });
    const run = (domain: string) => subject('Run', { domain });
    expect(member.can('read', run('production'), 'status')).toBe(true);
    expect(member.can('read', run('production'), 'parameters')).toBe(false);
    expect(member.can('read', run('experimentation'), 'parameters')).toBe(true);
    expect(granted.can('read', run('production'), 'parameters')).toBe(true);
    expect(member.can('read', run('production'), 'noSuchField')).toBe(false);
    expect(member.can('read', 'AuditEvent')).toBe(false);
    expect(defineAbilityFor({ id: 'a', role: 'admin' }).can('read', 'AuditEvent')).toBe(true);
    for (const s of fieldSubjects) for (const f of dataFields(s)) expect(member.can('read', subject(s, { domain: 'adhoc' }), f), `${s}.${f}`).toBe(false);
  });

  it('narrows a scoped token to its scopes, and refuses unknown scopes', () => {
    const ci = defineAbilityFor({ id: 'ci', role: 'member' }, { domains: [] }, ['publish:Module', 'publish:Namespace', 'read:Module']);
    expect(ci.can('publish', 'Module')).toBe(true);
    expect(ci.can('read', 'Module')).toBe(true);
    expect(ci.can('read', 'Run')).toBe(false);
    expect(ci.can('start', subject('Run', { domain: 'experimentation' }))).toBe(false);
    const reader = defineAbilityFor({ id: 'r', role: 'admin' }, { domains: [] }, ['read:*']);
    expect(reader.can('read', 'Run')).toBe(true);
    expect(reader.can('administer', 'Identity')).toBe(false);
    expect(() => parseScopes(['read:Run', 'fly:Run'])).toThrow(/scopes.1 "fly:Run" is not a scope/);
    expect(() => parseScopes(['read:Nothing'])).toThrow(/is not a scope/);
  });
});
