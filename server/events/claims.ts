// Serves executor hosts' claims over the bus: claims that arrive together (a host's batch of them, protocol 5, or
// single ones of the same moment) are answered by one query (the orchestrator decides; see
// server/orchestrator/claims.ts). A claim that cannot be answered goes unanswered, and its host asks again later
// without running anything.

import type { SQL } from 'drizzle-orm';
import type { Bus, Subscription } from '../../plugins/bus/types';
import { type AttemptClaim, type ClaimAnswer, PROTOCOL_VERSION } from '../../plugins/protocol';
import { traceTaskHop } from '../../plugins/trace';
import type { Service } from '../lifecycle';

export interface ClaimServerOptions {
  bus: Bus;
  orchestrator: { answerClaims(claims: AttemptClaim[], alongside?: (claimed: SQL) => SQL): Promise<ClaimAnswer[]> };
  log: (message: string) => void;
  /**
   * Gives each attempt allowed to run a token of its own for MLflow clients inside it (see server/tracking/task-tokens.ts):
   * minted before the claims are answered and stored by the statement that answers them.
   */
  tracking?: { prepare(claims: AttemptClaim[]): Promise<ClaimTokens | undefined>; uri?(): string | undefined; ready?(): Promise<void> };
  /**
   * Attempts a dispatch of this process reserved (server/orchestrator/reservations.ts): an attempt's first claim is
   * answered from its reservation at once, with no query; every other claim as before. `replica`: the id their task
   * messages name (TaskMessage.claimAt), served as a subject of this server's own beside the shared one.
   */
  reservations?: {
    replica?: string;
    answer(claim: AttemptClaim, uri: string | undefined): Extract<ClaimAnswer, { verdict: 'run' }> | undefined;
  };
  /** How long a running attempt may stay silent before it is presumed lost: hosts are told to beat four times in it. */
  heartbeatTimeoutMs?: number;
}

/** Tokens minted for a claim batch (server/tracking/task-tokens.ts ClaimTokens): stored with the claim query, attached to its answers. */
interface ClaimTokens {
  insert(claimed: SQL): SQL;
  attach(answers: ClaimAnswer[]): ClaimAnswer[];
  failed(): void;
}

type RunAnswer = Extract<ClaimAnswer, { verdict: 'run' }>;

/**
 * A run answer as it goes to the host: with this control plane's protocol and how often to beat. A copy, made as one
 * literal of every field (a field unset is left undefined, which the answer's JSON leaves out): a spread of the answer
 * and of the beat took V8's generic copy (~1 µs an answer in S1's claims), and setting the two on an answer made by a
 * spread was ~500 bytes an answer (V8 gave it no room for more properties and turned it into a dictionary). The
 * `satisfies` fails to compile when the answer gains a field this does not copy.
 */
const stamped = (a: RunAnswer, heartbeatMs: number | undefined): RunAnswer =>
  ({
    verdict: 'run',
    tracking: a.tracking,
    execution: a.execution,
    attemptKey: a.attemptKey,
    protocol: PROTOCOL_VERSION,
    heartbeatMs,
  }) satisfies { [K in keyof Required<RunAnswer>]: RunAnswer[K] | undefined };

/** Most claims answered by one query. */
const MAX_BATCH = 500;

export function createClaimServer(options: ClaimServerOptions): Service {
  const { bus, orchestrator, log } = options;
  const heartbeatMs = options.heartbeatTimeoutMs ? Math.max(1, Math.floor(options.heartbeatTimeoutMs / 4)) : undefined;
  let subscription: Subscription | undefined;
  let queue: { claim: AttemptClaim; resolve: (a: ClaimAnswer) => void; reject: (e: unknown) => void }[] = [];
  let scheduled = false;

  async function flush() {
    scheduled = false;
    for (const q of queue) traceTaskHop('control plane: claims flushed', q.claim.runId, q.claim.taskId);
    while (queue.length) {
      const batch = queue.slice(0, MAX_BATCH);
      queue = queue.slice(MAX_BATCH);
      try {
        const claims = batch.map((q) => q.claim);
        const tokens = await options.tracking?.prepare(claims);
        let answers: ClaimAnswer[];
        try {
          answers = await orchestrator.answerClaims(claims, tokens?.insert);
        } catch (error) {
          tokens?.failed();
          throw error;
        }
        if (tokens) answers = tokens.attach(answers);
        // Every run answer says which protocol this control plane reads: hosts fold events into bundles only for 2,
        // and send claims in batches (served by the bus beside single ones) only for 5.
        // And how often to beat: a host's own interval (5 s by default) longer than this control plane's timeout had
        // every live attempt that ran past the timeout presumed lost and run again.
        for (let i = 0; i < answers.length; i++) {
          const a = answers[i]!;
          if (a.verdict === 'run') answers[i] = stamped(a, heartbeatMs);
        }
        for (let i = 0; i < batch.length; i++) {
          const q = batch[i]!;
          traceTaskHop('control plane: claim answered', q.claim.runId, q.claim.taskId);
          q.resolve(answers[i]!);
        }
      } catch (error) {
        log(`answering ${batch.length} attempt claims failed, hosts will ask again: ${(error as Error).message}`);
        for (const q of batch) q.reject(error);
      }
    }
  }

  return {
    name: 'claim server',
    async start() {
      // The tokens' identity made sure of first: dispatches store their attempts' tokens only once it is known.
      await options.tracking
        ?.ready?.()
        .catch((error: unknown) => log(`task tokens' identity not ready, the first claims mint them: ${(error as Error).message}`));
      subscription = await bus.serveClaims(
        (claim) =>
          new Promise<ClaimAnswer>((resolve, reject) => {
            traceTaskHop('control plane: claim received', claim.runId, claim.taskId);
            const reserved = options.reservations?.answer(claim, options.tracking?.uri?.());
            if (reserved) {
              traceTaskHop('control plane: claim answered', claim.runId, claim.taskId);
              resolve(stamped(reserved, heartbeatMs));
              return;
            }
            queue.push({ claim, resolve, reject });
            if (!scheduled) {
              scheduled = true;
              setImmediate(() => void flush());
            }
          }),
        options.reservations?.replica,
      );
    },
    async stop() {
      await subscription?.stop();
    },
  };
}
