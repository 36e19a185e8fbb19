// Runs logged from outside a workflow (a notebook, a script): open one in an experiment, log params and metrics into
// it, end it. Anyone who may start runs in experimentation opens one; only its creator (or an admin) logs into it.
// The tracking service (server/tracking/) does the work and the checks.

import { assertCan } from '../../server/auth/ability';
import { badInput } from '../../server/errors';
import type { Caller } from '../../server/tracking/access';
import { endStatuses, externalTaskOf, startExternalRun, updateTrackedRun } from '../../server/tracking/external-runs';
import { logBatch } from '../../server/tracking/logging';
import { builder } from '../builder';
import type { Context } from '../context';
import { RunRef } from './runs';

const caller = (ctx: Context): Caller => ({ identity: ctx.identity, ability: ctx.ability, task: null });

function stringMap(value: unknown, name: string): Record<string, string> {
  if (value === null || value === undefined) return {};
  if (typeof value !== 'object' || Array.isArray(value)) throw badInput(`${name} must be a JSON object of strings.`);
  return Object.fromEntries(
    Object.entries(value).map(([k, v]) => {
      if (v === null || typeof v === 'object') throw badInput(`${name}.${k} must be a string, number or boolean.`);
      return [k, String(v)];
    }),
  );
}

const MetricPointInput = builder.inputType('MetricPointInput', {
  fields: (t) => ({
    name: t.string({ required: true }),
    value: t.float({ required: true, description: 'GraphQL floats cannot be NaN or ±Infinity: log those through the MLflow API.' }),
    step: t.int({ description: 'Default 0.' }),
    timestamp: t.field({ type: 'DateTime', description: 'Default: now.' }),
  }),
});

const ExternalRunEndEnum = builder.enumType('ExternalRunEnd', {
  values: Object.keys(endStatuses) as (keyof typeof endStatuses)[],
  description: 'How an external run ended (MLflow’s words): FINISHED → SUCCEEDED, FAILED → FAILED, KILLED → CANCELLED.',
});

builder.mutationFields((t) => ({
  startExternalRun: t.field({
    type: RunRef,
    description:
      'Opens a run logged from outside a workflow (trigger EXTERNAL, experimentation domain), RUNNING until `endExternalRun`. `experiment`: an id or name (a new name is refused: create it first; default: the Default experiment).',
    args: {
      experiment: t.arg.string(),
      name: t.arg.string(),
      tags: t.arg({ type: 'JSON', description: 'A JSON object of string values.' }),
      parameters: t.arg({ type: 'JSON', description: 'A JSON object of string values (params cannot change once logged).' }),
    },
    resolve: async (_root, args, ctx) => {
      const { run } = await startExternalRun(ctx.services.db, ctx.services.feed, caller(ctx), {
        experiment: args.experiment,
        name: args.name,
        tags: stringMap(args.tags, 'tags'),
        parameters: stringMap(args.parameters, 'parameters'),
      });
      return run;
    },
  }),
  logRunMetrics: t.field({
    type: RunRef,
    description: 'Logs metric points into an external run (at most 1000 per call). Only its creator or an admin may.',
    args: { runId: t.arg.id({ required: true }), points: t.arg({ type: [MetricPointInput], required: true }) },
    resolve: async (_root, args, ctx) => {
      // Who may not start runs at all is refused (and audited) before the run is looked up.
      assertCan(ctx.ability, 'start', 'Run', 'log into runs');
      const taskId = await externalTaskOf(ctx.services.db, caller(ctx), String(args.runId));
      const metrics = args.points.map((p) => ({ key: p.name, value: p.value, step: p.step ?? 0, timestamp: p.timestamp ? p.timestamp.getTime() : undefined }));
      return (await logBatch(ctx.services.db, ctx.services.feed, caller(ctx), taskId, { metrics })).run;
    },
  }),
  logRunParams: t.field({
    type: RunRef,
    description: 'Logs params into an external run (at most 100 per call); a param already logged with another value is refused.',
    args: { runId: t.arg.id({ required: true }), parameters: t.arg({ type: 'JSON', required: true }) },
    resolve: async (_root, args, ctx) => {
      assertCan(ctx.ability, 'start', 'Run', 'log into runs');
      const taskId = await externalTaskOf(ctx.services.db, caller(ctx), String(args.runId));
      const params = Object.entries(stringMap(args.parameters, 'parameters')).map(([key, value]) => ({ key, value }));
      return (await logBatch(ctx.services.db, ctx.services.feed, caller(ctx), taskId, { params })).run;
    },
  }),
  endExternalRun: t.field({
    type: RunRef,
    description: 'Ends an external run.',
    args: { runId: t.arg.id({ required: true }), status: t.arg({ type: ExternalRunEndEnum, defaultValue: 'FINISHED' }) },
    resolve: async (_root, args, ctx) => {
      assertCan(ctx.ability, 'start', 'Run', 'end runs');
      const taskId = await externalTaskOf(ctx.services.db, caller(ctx), String(args.runId));
      return (await updateTrackedRun(ctx.services.db, ctx.services.feed, caller(ctx), taskId, { status: args.status ?? 'FINISHED' })).run;
    },
  }),
}));
