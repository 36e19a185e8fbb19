// Asking the control plane whether attempts may run. Claims asked in the same tick (a task batch's attempts) go as one
// request (protocol 5) once the control plane has said it reads batches; until then, and after a batch went
// unanswered, they go one by one, as a host below 5 asks.
import { DEFAULT_MAX_PAYLOAD_BYTES } from '../bus/payload-limit';
import type { Bus } from '../bus/types';
import { type AttemptClaim, CLAIM_BATCH_PROTOCOL, type ClaimAnswer } from '../protocol';

/** One claim's answer; `undefined` when none came (the host runs nothing and asks again later). */
export type AskClaim = (claim: AttemptClaim) => Promise<ClaimAnswer | undefined>;

/** Most claims in one request: a host's usual flow-control window, so one request answers a whole delivery round. */
export const MAX_CLAIM_BATCH = 256;

/**
 * Room each claim of a batch is given in the bus's payload limit: a claim's JSON is ~200 bytes, its answer up to ~600
 * with a tracking token, so a server with a small max_payload gets smaller batches rather than requests it refuses.
 */
export const CLAIM_BYTES = 1024;

export function createClaimAsker(bus: Pick<Bus, 'requestClaim' | 'requestClaims' | 'maxPayloadBytes'>, timeoutMs: number): AskClaim {
  /** The control plane reads batches: its last run answer said so, and no batch went unanswered since. */
  let batches = false;
  let queue: { claim: AttemptClaim; resolve: (answer: ClaimAnswer | undefined) => void }[] = [];
  let scheduled = false;

  async function single(claim: AttemptClaim): Promise<ClaimAnswer | undefined> {
    const answer = await bus.requestClaim(claim, timeoutMs);
    // Only run answers say which protocol the control plane reads (ClaimAnswer.protocol).
    if (answer?.verdict === 'run') batches = (answer.protocol ?? 1) >= CLAIM_BATCH_PROTOCOL;
    return answer;
  }

  async function send(waiting: typeof queue): Promise<void> {
    if (waiting.length === 1) {
      waiting[0]!.resolve(await single(waiting[0]!.claim));
      return;
    }
    const answers = await bus.requestClaims!(
      waiting.map((w) => w.claim),
      timeoutMs,
    );
    // No answer is no answer to any of them, as for a single claim; the next ones go one by one until a run answer
    // says batches are read again (the control planes at 5 may all have gone, leaving one below 5).
    if (!answers) batches = false;
    for (const [i, w] of waiting.entries()) w.resolve(answers?.[i]);
  }

  function flush() {
    scheduled = false;
    const waiting = queue;
    queue = [];
    const size = Math.max(1, Math.min(MAX_CLAIM_BATCH, Math.floor((bus.maxPayloadBytes?.() ?? DEFAULT_MAX_PAYLOAD_BYTES) / CLAIM_BYTES)));
    for (let i = 0; i < waiting.length; i += size) void send(waiting.slice(i, i + size));
  }

  return (claim) => {
    if (!batches || !bus.requestClaims) return single(claim);
    return new Promise((resolve) => {
      queue.push({ claim, resolve });
      if (!scheduled) {
        scheduled = true;
        setImmediate(flush);
      }
    });
  };
}
