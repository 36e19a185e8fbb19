// Asking the control plane whether an attempt may run, before it runs and again after its download, and settling a
// delivery the answer says not to run. How claims travel (several in one request) is claims.ts.
import type { Delivery } from '../bus/types';
import type { AttemptClaim, ClaimAnswer } from '../protocol';
import type { TaskMessage } from '../sdk';
import { traceTaskHop } from '../trace';
import type { AttemptRuntime } from './attempt';

/** How long a host waits for the control plane's answer to a claim, and how long it waits to ask again. */
export const CLAIM_TIMEOUT_MS = 5_000;
export const CLAIM_RETRY_MS = 2_000;

/** What a host does with a delivery, given the control plane's answer to its claim (undefined: none came). */
export function claimAction(answer: ClaimAnswer | undefined): 'run' | 'drop' | 'ask-later' {
  if (!answer || answer.verdict === 'later') return 'ask-later';
  return answer.verdict === 'run' ? 'run' : 'drop';
}

/**
 * Claims an attempt before it runs: true when it may run. A message redelivered after its attempt finished or was
 * superseded is acked and dropped without a word on the bus; with no answer (no control plane reachable) the
 * message goes back for later, since running an attempt that may have finished is never right.
 */
export async function claimAttempt(rt: AttemptRuntime, delivery: Delivery<TaskMessage>): Promise<boolean> {
  const action = await askClaim(rt, delivery);
  if (action === 'run') return true;
  await settleUnclaimed(rt, delivery, action);
  return false;
}

export async function askClaim(rt: AttemptRuntime, delivery: Delivery<TaskMessage>): Promise<{ drop: string } | 'run' | 'ask-later'> {
  if (!rt.verifyClaims) return 'run';
  const { taskId, runId, attempt } = delivery.data;
  delivery.working();
  // Fields set one by one, not spread from literals: each spread made an object of its own, every claim.
  const claim: AttemptClaim = { taskId, runId, attempt, host: rt.host };
  if (delivery.redeliveryCount > 0) claim.redelivered = true;
  if (!tracks(rt, delivery.data)) claim.tracking = false;
  // Protocol 4: the first claim asks for this execution's number; asking again (after a download) it keeps it.
  claim.execution = delivery.data.execution ?? null;
  // Protocol 6: asking again, it shows the key its first answer gave (one a restore undid is dropped).
  if (delivery.data.attemptKey) claim.attemptKey = delivery.data.attemptKey;
  traceTaskHop('host: claim asked', runId, taskId);
  // The attempt's first claim (not asked again, not redelivered) goes to the replica that reserved it, if one did: it
  // answers from memory; any other replica would number execution 1 and hold it until the event backlog is recorded.
  const first = claim.execution === null && !claim.redelivered && !claim.attemptKey;
  const at = first && typeof delivery.data.claimAt === 'string' ? delivery.data.claimAt : undefined;
  const answer = await rt.askClaim(claim, at);
  traceTaskHop('host: claim answered', runId, taskId);
  const action = claimAction(answer);
  // A run answer may carry the attempt's tracking token (MLflow inside the task); the second answer's is as good.
  if (action === 'run' && answer?.verdict === 'run' && answer.tracking) delivery.data.tracking = answer.tracking;
  // The control plane's protocol version decides whether the reporter may fold events into bundles (protocol.ts).
  if (action === 'run' && answer?.verdict === 'run' && answer.protocol) delivery.data.protocol = answer.protocol;
  // The execution's number decides where its events are numbered from (reporter.ts); a control plane below 4 gives none.
  if (action === 'run' && answer?.verdict === 'run' && Number.isInteger(answer.execution) && answer.execution! >= 0)
    delivery.data.execution ??= answer.execution;
  // The attempt's key goes on every event (protocol 6): a database restored since drew another, and refuses them.
  if (action === 'run' && answer?.verdict === 'run' && typeof answer.attemptKey === 'string') delivery.data.attemptKey ??= answer.attemptKey;
  // Its control plane's heartbeat timeout may be shorter than this host's interval: beat as often as it asks.
  if (action === 'run' && answer?.verdict === 'run' && Number.isFinite(answer.heartbeatMs) && answer.heartbeatMs! > 0)
    delivery.data.heartbeatMs = answer.heartbeatMs;
  return action === 'drop' ? { drop: answer?.verdict === 'drop' ? answer.reason : '' } : action;
}

/** Whether the attempt's executor may log to MLflow (Executor.tracking); an unknown executor is asked as one that may. */
function tracks(rt: AttemptRuntime, task: TaskMessage): boolean {
  const name = rt.executeWith ?? task.executor;
  return !rt.registry.names().includes(name) || rt.registry.get(name).tracking !== false;
}

export async function settleUnclaimed(rt: AttemptRuntime, delivery: Delivery<TaskMessage>, action: { drop: string } | 'ask-later') {
  if (action === 'ask-later') return delivery.nak(CLAIM_RETRY_MS);
  await delivery.ack();
  rt.warn(`dropped ${delivery.data.taskId}:${delivery.data.attempt} without running it: ${action.drop}`);
}

/** Thrown from `artifactPath()` when the claim asked again after the download says the attempt is no longer current. */
export class Unclaimed extends Error {
  constructor(
    readonly key: string,
    readonly action: { drop: string } | 'ask-later',
  ) {
    // An executor that shares one download between tasks may hand this to another attempt: it fails there as a
    // platform failure (retried), never settles that attempt's delivery as unclaimed.
    super(`attempt ${key} is no longer current; try again`);
  }
}
