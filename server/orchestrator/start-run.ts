// startRun: a new run of a workflow, idempotent by key. A start of a workflow started before by this process is sent in
// one round trip: its writes are built from what the last start by the same reference read (start-guesses.ts) and sent
// behind a guard that aborts the transaction when that is no longer so; the start then reads and plans as any other.
import { eq } from 'drizzle-orm';
import { traceHop, traceNow } from '../../plugins/trace';
import { claimCacheNamespace } from '../cache/namespaces';
import type { Tx } from '../db/client';
import { guessMissed } from '../db/guess-guard';
import type { Identity } from '../db/tables/identities';
import type { Run } from '../db/tables/runs';
import type { Experiment } from '../db/tables/tracking';
import { type Workflow, type WorkflowVersion, workflows } from '../db/tables/workflows';
import { isUuid } from '../db/uuid';
import { notFound } from '../errors';
import { namedExperiment } from '../tracking/experiments';
import { specDomainOf } from '../workflows/queries';
import { resolveRunParameters } from '../workflows/spec';
import { type OrchestratorContext, type TxContext, transact } from './context';
import { findRunByKey } from './idempotency';
import type { StartRunInput } from './orchestrator';
import { checkRunTimeout } from './run-deadline';
import { checkIdempotencyKey, checkPriority, checkSameWorkflow, moduleSwaps, privateNamespace } from './run-inputs';
import { createRun } from './start';
import type { SentAhead } from './start-guesses';
import { workflowWithVersion } from './start-statements';

export async function startRun(ctx: OrchestratorContext, input: StartRunInput, identity: Identity | null): Promise<Run> {
  const entered = traceNow();
  checkIdempotencyKey(input.idempotencyKey);
  checkPriority(input.priority);
  checkRunTimeout(input.timeoutSeconds);
  const existing = async () => {
    if (!input.idempotencyKey) return undefined;
    return findRunByKey(ctx.db, identity?.id ?? null, input.idempotencyKey);
  };
  const earlier = await existing();
  if (earlier) return sameWorkflow(ctx, earlier, input);
  try {
    const run = (await startGuessed(ctx, input, identity)) ?? (await startReading(ctx, input, identity));
    traceHop('control plane: startRun entered', run.id, entered);
    return run;
  } catch (error) {
    // Two requests with the same key at once: the loser returns the winner's run.
    const winner = await existing().catch(() => undefined);
    if (winner) return sameWorkflow(ctx, winner, input);
    throw error;
  }
}

/**
 * The start in one round trip, from the guess: BEGIN, the guard, the writes and the COMMIT are sent together. Whatever
 * it fails with stands only if the guess held (its checks were made on what the reads would have returned); a guess
 * that did not hold fails the transaction, nothing of it is kept, and the start is made again by reading (undefined).
 */
async function startGuessed(ctx: OrchestratorContext, input: StartRunInput, identity: Identity | null): Promise<Run | undefined> {
  const guess = ctx.startGuesses.guess(input);
  if (!guess) return undefined;
  let guarded: Promise<boolean> | undefined;
  try {
    const ahead: SentAhead = { modules: guess.modules };
    const run = await transact(ctx, (tc) => {
      guarded = guess.guard(tc.tx).then(
        () => false,
        (error: unknown) => guessMissed(error),
      );
      return startWith(tc, input, identity, { ...guess.found, experiment: undefined }, ahead);
    });
    ctx.startGuesses.learn(input, ahead, guess.found);
    return run;
  } catch (error) {
    if (!(await guarded)) throw error;
    ctx.startGuesses.missed(input);
    return undefined;
  }
}

/** The start as it reads: the workflow with its experiment, and the modules the last start by this reference used, in one round trip. */
async function startReading(ctx: OrchestratorContext, input: StartRunInput, identity: Identity | null): Promise<Run> {
  let ahead: SentAhead | undefined;
  let found: Awaited<ReturnType<typeof findWorkflow>> | undefined;
  const run = await transact(ctx, async (tc) => {
    // What the last start by this reference read after the workflow goes with the workflow's read (start-guesses.ts).
    const finding = findWorkflow(tc.tx, input.workflow, input.version);
    ahead = ctx.startGuesses.sendAhead(tc.tx, input);
    found = await finding;
    return startWith(tc, input, identity, found, ahead);
  });
  // The workflow's own experiment: the one read, or the one this start made (not known when it named another).
  const experimentId = found!.experiment?.id ?? (input.experiment ? undefined : run.experimentId);
  ctx.startGuesses.learn(input, ahead!, experimentId ? { workflow: found!.workflow, version: found!.version, experimentId } : undefined);
  return run;
}

/** What the workflow's read found, or the guess of it (its experiment by id only). */
type Known = { workflow: Workflow; version: WorkflowVersion; experiment: Experiment | null | undefined; experimentId?: string };

/** The start's checks and its run, on the workflow read or guessed: the same whichever it is. */
async function startWith(tc: TxContext, input: StartRunInput, identity: Identity | null, known: Known, ahead: SentAhead): Promise<Run> {
  const { workflow, version } = known;
  const domain = input.domain ?? specDomainOf(workflow, version);
  input.authorize?.({ name: workflow.name, domain: specDomainOf(workflow, version) }, domain);
  const parameters = resolveRunParameters(version.spec, input.parameters ?? {});
  const overrides = moduleSwaps(version.spec, input.useModules ?? []);
  const cacheNamespace = privateNamespace(input.cacheNamespace, domain);
  if (cacheNamespace) await claimCacheNamespace(tc.tx, cacheNamespace, identity);
  return createRun(tc, {
    workflow,
    version,
    parameters,
    trigger: input.trigger,
    identity,
    idempotencyKey: input.idempotencyKey,
    overrides,
    domain,
    refreshCache: input.refreshCache,
    cacheNamespace,
    hotCluster: input.hotCluster,
    actingFor: input.actingFor,
    scopes: input.scopes ?? null,
    priority: input.priority,
    timeoutSeconds: input.timeoutSeconds,
    experimentId: input.experiment ? (await namedExperiment(tc.tx, input.experiment, identity?.id ?? null)).id : known.experimentId,
    workflowExperiment: known.experiment ?? null,
    ahead,
  });
}

/** The run an idempotency key already started, when it is of the workflow asked for. */
async function sameWorkflow(ctx: OrchestratorContext, run: Run, input: StartRunInput): Promise<Run> {
  const [workflow] = run.workflowId ? await ctx.db.select().from(workflows).where(eq(workflows.id, run.workflowId)) : [];
  checkSameWorkflow(workflow, input.workflow, input.idempotencyKey);
  if (workflow) input.authorize?.(workflow, input.domain ?? workflow.domain);
  return run;
}

async function findWorkflow(tx: Tx, ref: string, version?: number): Promise<Omit<Known, 'experimentId'> & { experiment: Experiment | null }> {
  // The workflow, the version wanted (its latest unless named) and its experiment in one statement.
  const [found] = await workflowWithVersion(tx, ref, isUuid(ref), version);
  const workflow = found?.workflow;
  if (!workflow) throw notFound(`No workflow "${ref}". Create it with \`npx atelier workflow create FILE\` or the createWorkflow mutation.`);
  const wanted = version ?? workflow.latestVersion;
  const wv = found.version;
  if (!wv) throw notFound(`Workflow "${workflow.name}" has no version ${wanted}; its latest is ${workflow.latestVersion}.`);
  return { workflow, version: wv, experiment: found.experiment };
}
