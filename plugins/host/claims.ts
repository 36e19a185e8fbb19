// Asking the control plane whether attempts may run. Claims asked in the same tick (a task batch's attempts) go as one
// request (protocol 5), from a host's first tick on: a control plane below 5 serves no batches (NATS answers "no
// responders" at once), and the claims of a first batch that went unanswered are asked one by one at once, as a host
// below 5 asks, until a run answer says the control plane reads batches. After a batch that went unanswered once
// batches were answered, claims go one by one too. A claim asked `at` a replica (the one that reserved the
// attempt's first claim, TaskMessage.claimAt) goes to that replica alone first; when it does not answer (gone: NATS
// says at once that nobody serves its subject; older; too slow) it is asked of any replica, as every claim was before.
import { DEFAULT_MAX_PAYLOAD_BYTES } from '../bus/payload-limit';
import type { Bus } from '../bus/types';
import { type AttemptClaim, CLAIM_BATCH_PROTOCOL, type ClaimAnswer } from '../protocol';

/** One claim's answer; `undefined` when none came (the host runs nothing and asks again later). `at`: the replica to ask first. */
export type AskClaim = (claim: AttemptClaim, at?: string) => Promise<ClaimAnswer | undefined>;

/** Most claims in one request: a host's usual flow-control window, so one request answers a whole delivery round. */
export const MAX_CLAIM_BATCH = 256;

/**
 * Room each claim of a batch is given in the bus's payload limit: a claim's JSON is ~200 bytes, its answer up to ~600
 * with a tracking token, so a server with a small max_payload gets smaller batches rather than requests it refuses.
 */
export const CLAIM_BYTES = 1024;

/**
 * How long a claim asked of the replica that reserved it waits before it is asked of any: that replica answers from
 * memory, with no query, so only a stalled process (or a lost reply) takes this long; one that is gone answers at once.
 */
export const RESERVED_CLAIM_TIMEOUT_MS = 1_000;

export function createClaimAsker(bus: Pick<Bus, 'requestClaim' | 'requestClaims' | 'maxPayloadBytes'>, timeoutMs: number): AskClaim {
  /**
   * Whether the control plane reads batches: true once a batch was answered, or a run answer said so (ClaimAnswer.protocol);
   * false when a run answer said not, or a batch went unanswered since. Not known yet (a host's first claims): batches
   * are tried. Asking one by one until the first answer came made a request and a reply for each of a fresh host's
   * first claims: ~500 of S1's 10,000 (docs/performance.md, session 35).
   */
  let batches: boolean | undefined;
  let queue: { claim: AttemptClaim; at: string | undefined; resolve: (answer: ClaimAnswer | undefined) => void }[] = [];
  let scheduled = false;

  async function single(claim: AttemptClaim, at: string | undefined): Promise<ClaimAnswer | undefined> {
    const answer =
      (at !== undefined ? await bus.requestClaim(claim, Math.min(timeoutMs, RESERVED_CLAIM_TIMEOUT_MS), at) : undefined) ??
      (await bus.requestClaim(claim, timeoutMs));
    // Only run answers say which protocol the control plane reads (ClaimAnswer.protocol).
    if (answer?.verdict === 'run') batches = (answer.protocol ?? 1) >= CLAIM_BATCH_PROTOCOL;
    return answer;
  }

  async function send(waiting: typeof queue, at: string | undefined): Promise<void> {
    if (waiting.length === 1) {
      waiting[0]!.resolve(await single(waiting[0]!.claim, at));
      return;
    }
    const claims = waiting.map((w) => w.claim);
    /** Sent before any answer said whether the control plane reads batches. */
    const tried = batches === undefined;
    // Asked of their replica first (it is gone, older or stalled: of any), as a single claim is.
    const answers =
      (at !== undefined ? await bus.requestClaims!(claims, Math.min(timeoutMs, RESERVED_CLAIM_TIMEOUT_MS), at) : undefined) ??
      (await bus.requestClaims!(claims, timeoutMs));
    if (answers) {
      batches = true;
      for (const [i, w] of waiting.entries()) w.resolve(answers[i]);
      return;
    }
    // No answer is no answer to any of them, as for a single claim; the next ones go one by one until a run answer
    // says batches are read again (the control planes at 5 may all have gone, leaving one below 5).
    batches = false;
    if (!tried) {
      for (const w of waiting) w.resolve(undefined);
      return;
    }
    // A batch tried before any answer came: a control plane below 5 serves none. Its claims are asked one by one now,
    // as they would have been from the first (a run answer then says which protocol the control plane reads).
    for (const w of waiting) single(w.claim, at).then(w.resolve, () => w.resolve(undefined));
  }

  function flush() {
    scheduled = false;
    const waiting = queue;
    queue = [];
    const size = Math.max(1, Math.min(MAX_CLAIM_BATCH, Math.floor((bus.maxPayloadBytes?.() ?? DEFAULT_MAX_PAYLOAD_BYTES) / CLAIM_BYTES)));
    // A request per replica asked (and one for the claims asked of any).
    const byReplica = new Map<string | undefined, typeof queue>();
    for (const w of waiting) {
      const group = byReplica.get(w.at);
      if (group) group.push(w);
      else byReplica.set(w.at, [w]);
    }
    for (const [at, group] of byReplica) for (let i = 0; i < group.length; i += size) void send(group.slice(i, i + size), at);
  }

  return (claim, at) => {
    if (batches === false || !bus.requestClaims) return single(claim, at);
    return new Promise((resolve) => {
      queue.push({ claim, at, resolve });
      if (!scheduled) {
        scheduled = true;
        setImmediate(flush);
      }
    });
  };
}
