// Executor hosts and pools as their heartbeats describe them, hot clusters (create, end, list), and on Task the
// routing view: GPUs asked for, the hot cluster, provisioning vs execution time, and why it is still waiting.
import { assertCan } from '../../server/auth/ability';
import { hotClusterMessage } from '../../server/compute/hot-clusters';
import { isLive, knownHosts, type PoolSummary, poolSummaries, waitingReason } from '../../server/compute/routing';
import type { ExecutorHostRow, HotCluster } from '../../server/db/tables/executors';
import { badInput } from '../../server/errors';
import { guard } from '../auth';
import { builder } from '../builder';
import { sharedLoader } from '../loaders';
import { NodeRef } from '../node';
import { HotClusterStateEnum, PoolHealthEnum } from './enums';
import { IdentityRef } from './identity';
import { TaskRef } from './tasks';
import { TeamRef } from './teams';

/** Every recently seen executor host, read once per request (there are few, and each task's waitingReason needs them). */
const hostsOf = sharedLoader<'all', ExecutorHostRow[]>(async (keys, ctx) => {
  const hosts = await knownHosts(ctx.services.db, new Date());
  return keys.map(() => hosts);
});

const staleMs = (ctx: { services: { config: { hostStaleMs: number } } }) => ctx.services.config.hostStaleMs;

export const ExecutorHostRef = builder.objectRef<ExecutorHostRow>('ExecutorHost').implement({
  authScopes: guard('ExecutorHost', 'ExecutorHost'),
  description: 'An executor host process, as its latest heartbeat described it.',
  fields: (t) => ({
    id: t.exposeID('id', { description: 'Unique per host process: a restarted host is a new one.' }),
    name: t.exposeString('name'),
    executors: t.exposeStringList('executors'),
    pools: t.exposeStringList('pools'),
    capacity: t.exposeInt('capacity', { description: 'Most attempts it runs at once.' }),
    running: t.exposeInt('running'),
    gpus: t.exposeInt('gpus', { description: 'GPUs a task may use on it.' }),
    hotClusters: t.exposeStringList('hotClusters', { description: 'Hot clusters it holds warm.' }),
    hotClusterExecutors: t.exposeStringList('hotClusterExecutors', { description: 'Its executors that can keep a hot cluster.' }),
    version: t.exposeString('version'),
    draining: t.exposeBoolean('draining', { description: 'Its last heartbeat said it is stopping: it takes no new work and finishes what it runs.' }),
    startedAt: t.expose('startedAt', { type: 'DateTime' }),
    lastSeenAt: t.expose('lastSeenAt', { type: 'DateTime' }),
    live: t.boolean({ description: 'Heard from within ATELIER_HOST_STALE_SECONDS.', resolve: (h, _a, ctx) => isLive(h, new Date(), staleMs(ctx)) }),
  }),
});

const ExecutorPoolRef = builder.objectRef<PoolSummary>('ExecutorPool').implement({
  description: 'A pool of executor hosts sharing one task queue.',
  fields: (t) => ({
    name: t.exposeString('pool'),
    health: t.field({ type: PoolHealthEnum, resolve: (p) => p.health }),
    hosts: t.field({ type: [ExecutorHostRef], description: 'Its live hosts.', resolve: (p) => p.liveHosts }),
    capacity: t.exposeInt('capacity', { description: 'Sum over its live hosts.' }),
    running: t.exposeInt('running'),
    queued: t.exposeInt('queued', { description: 'Tasks READY or QUEUED for it.' }),
    gpus: t.exposeInt('gpus', { description: 'Most GPUs one of its live hosts offers.' }),
    lastSeenAt: t.expose('lastSeenAt', { type: 'DateTime', nullable: true, description: 'The last heartbeat of any of its hosts.' }),
  }),
});

const HotClusterRef = builder.objectRef<HotCluster>('HotCluster').implement({
  authScopes: guard('HotCluster', 'HotCluster'),
  interfaces: [NodeRef],
  description: 'Compute an executor keeps warm between tasks; tasks asking for it (`hotCluster: NAME`) skip provisioning.',
  fields: (t) => ({
    id: t.exposeID('id'),
    name: t.exposeString('name'),
    executor: t.exposeString('executor'),
    pool: t.exposeString('pool'),
    spec: t.expose('spec', {
      type: 'JSON',
      description: 'Executor-specific: { workers } for local, { clusterId } for databricks, { replicas } for kubernetes-gpu.',
    }),
    state: t.field({ type: HotClusterStateEnum, resolve: (c) => c.state }),
    message: t.string({
      nullable: true,
      description: 'Why it is not warm yet, or why it ended.',
      resolve: (c, _a, ctx) => hotClusterMessage(ctx.services.db, c, new Date(), staleMs(ctx)),
    }),
    idleTimeoutMs: t.exposeFloat('idleTimeoutMs', { description: 'Ended after this long without a task.' }),
    lastUsedAt: t.expose('lastUsedAt', { type: 'DateTime', nullable: true }),
    createdBy: t.field({ type: IdentityRef, nullable: true, resolve: (c) => c.createdBy }),
    team: t.field({
      type: TeamRef,
      nullable: true,
      description: 'The team that owns it: only its members (and admins) run tasks on it and end it. None: only its creator (and admins).',
      resolve: (c) => c.teamId,
    }),
    createdAt: t.expose('createdAt', { type: 'DateTime' }),
    endedAt: t.expose('endedAt', { type: 'DateTime', nullable: true }),
  }),
});

builder.objectFields(TaskRef, (t) => ({
  gpus: t.exposeInt('gpus', { description: 'GPUs its module asks for; it is routed to a pool whose hosts have them.' }),
  hotCluster: t.exposeString('hotCluster', { nullable: true }),
  provisioningMs: t.exposeInt('provisioningMs', { nullable: true, description: 'Of its last attempt: getting compute ready (0 on a hot cluster).' }),
  executionMs: t.exposeInt('executionMs', { nullable: true, description: 'Of its last attempt: running the module, after provisioning.' }),
  waitingReason: t.string({
    nullable: true,
    description: 'Why a READY or QUEUED task has not started: no live host for its pool, no host with its executor or GPUs, every slot busy.',
    resolve: async (task, _a, ctx) => waitingReason(task, await hostsOf(ctx).load('all'), new Date(), staleMs(ctx)),
  }),
}));

builder.queryFields((t) => ({
  executorHosts: t.field({
    type: [ExecutorHostRef],
    description: 'Executor hosts heard from in the last day, most recently seen first.',
    args: { liveOnly: t.arg.boolean({ defaultValue: false }) },
    resolve: async (_r, args, ctx) => {
      assertCan(ctx.ability, 'read', 'ExecutorHost', 'list executor hosts');
      const hosts = await hostsOf(ctx).load('all');
      return args.liveOnly ? hosts.filter((h) => isLive(h, new Date(), staleMs(ctx))) : hosts;
    },
  }),
  executorPools: t.field({
    type: [ExecutorPoolRef],
    description: 'Pools announced by hosts or waited on by tasks, with live capacity and health.',
    resolve: async (_r, _a, ctx) => {
      assertCan(ctx.ability, 'read', 'ExecutorHost', 'list executor pools');
      return poolSummaries(ctx.services.db, await hostsOf(ctx).load('all'), new Date(), staleMs(ctx));
    },
  }),
  hotClusters: t.field({
    type: [HotClusterRef],
    args: { includeEnded: t.arg.boolean({ defaultValue: false }) },
    resolve: (_r, args, ctx) => {
      assertCan(ctx.ability, 'read', 'HotCluster', 'list hot clusters');
      return ctx.services.hotClusters.list({ includeEnded: args.includeEnded ?? false });
    },
  }),
}));

builder.mutationFields((t) => ({
  createHotCluster: t.field({
    type: HotClusterRef,
    description: 'Asks the hosts of a pool to keep compute warm for an executor; tasks with `hotCluster: NAME` then run on it.',
    args: {
      name: t.arg.string({ required: true }),
      executor: t.arg.string({ required: true }),
      pool: t.arg.string({
        description: 'Default: the executor’s name. Members use pools open to their team (ATELIER_HOT_CLUSTER_POOLS) that no other owner’s live cluster holds.',
      }),
      spec: t.arg({ type: 'JSON', description: 'Executor-specific settings, e.g. { "workers": 4 } for local.' }),
      idleTimeoutSeconds: t.arg.int({
        defaultValue: 1800,
        description: 'Ended after this long without a task: from 1 s to ATELIER_HOT_CLUSTER_MAX_IDLE_SECONDS (default 24 h).',
      }),
      team: t.arg.string({ description: 'The team that owns it (one of yours). Default: your only team; none when you are in no team.' }),
    },
    resolve: (_r, args, ctx) => {
      assertCan(ctx.ability, 'create', 'HotCluster', 'create hot clusters');
      const spec = args.spec ?? {};
      if (typeof spec !== 'object' || Array.isArray(spec)) throw badInput('spec must be a JSON object, e.g. { "workers": 4 }.');
      return ctx.services.hotClusters.create(
        {
          name: args.name,
          executor: args.executor,
          pool: args.pool ?? undefined,
          spec: spec as Record<string, unknown>,
          idleTimeoutMs: (args.idleTimeoutSeconds ?? 1800) * 1000,
          team: args.team ?? undefined,
        },
        { identity: ctx.identity, ability: ctx.ability },
      );
    },
  }),
  endHotCluster: t.field({
    type: HotClusterRef,
    description: 'Ends a live hot cluster. Only members of its team (or its creator, when it has no team) and admins may.',
    args: { name: t.arg.string({ required: true }) },
    resolve: (_r, args, ctx) => {
      assertCan(ctx.ability, 'update', 'HotCluster', 'end hot clusters');
      return ctx.services.hotClusters.end(args.name, `ended by ${ctx.identity.name}`, { identity: ctx.identity, ability: ctx.ability });
    },
  }),
}));
