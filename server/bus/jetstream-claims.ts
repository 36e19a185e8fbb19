// Claims over core NATS request/reply: a host asks whether an attempt may run, alone on one subject or, from
// protocol 5, several at once on another (a ClaimBatch) that only control planes that read batches serve. Each
// control plane also serves both under its own replica's id, outside the queue group: a first claim of an attempt it
// reserved is asked there (a request nobody serves is answered "no responders" at once, and the host asks the group).
import type { Msg, NatsConnection, Subscription as NatsSubscription } from '@nats-io/transport-node';
import type { Bus, Subscription } from '../../plugins/bus/types';
import type { AttemptClaim, ClaimAnswer, ClaimBatch, ClaimBatchAnswer } from '../../plugins/protocol';
import { subjectToken } from './jetstream-streams';

export interface ClaimWire {
  nc: NatsConnection;
  subjects: { claim: string; claims: string };
  /** The queue group the control planes share: each request reaches one of them. */
  queue: string;
  track(sub: NatsSubscription): Promise<Subscription>;
  assertOpen(): void;
}

export function claimMethods({ nc, subjects, queue, track, assertOpen }: ClaimWire): Pick<Bus, 'requestClaim' | 'requestClaims' | 'serveClaims'> {
  return {
    async requestClaim(claim, timeoutMs, at) {
      assertOpen();
      try {
        return (await nc.request(own(subjects.claim, at), JSON.stringify(claim), { timeout: timeoutMs })).json<ClaimAnswer>();
      } catch {
        return undefined; // no responders, a timeout or a reply that is not JSON: no answer
      }
    },

    async requestClaims(claims, timeoutMs, at) {
      assertOpen();
      try {
        const batch: ClaimBatch = { claims };
        const { answers } = (await nc.request(own(subjects.claims, at), JSON.stringify(batch), { timeout: timeoutMs })).json<ClaimBatchAnswer>();
        return Array.isArray(answers) && answers.length === claims.length ? answers : undefined;
      } catch {
        return undefined; // no responders (no control plane at protocol 5), a timeout or a reply that is not JSON
      }
    },

    async serveClaims(handler, ownId) {
      assertOpen();
      const single = (err: Error | null, msg: Msg) => {
        const claim = err ? undefined : parsed<AttemptClaim>(msg);
        if (!claim) return;
        handler(claim).then(
          (answer) => respond(msg, answer),
          () => undefined, // unanswered: the host asks again
        );
      };
      const batches = (err: Error | null, msg: Msg) => {
        const claims = err ? undefined : parsed<Partial<ClaimBatch>>(msg)?.claims;
        if (!Array.isArray(claims)) return;
        // Handed over in one tick, so the claim server answers them with one query.
        Promise.all(claims.map((claim) => handler(claim))).then(
          (answers) => respond(msg, { answers } satisfies ClaimBatchAnswer),
          () => undefined, // unanswered: the host asks again
        );
      };
      const subs = [nc.subscribe(subjects.claim, { queue, callback: single }), nc.subscribe(subjects.claims, { queue, callback: batches })];
      // The replica's own subjects: no queue group, only this process serves them.
      if (ownId !== undefined)
        subs.push(nc.subscribe(own(subjects.claim, ownId), { callback: single }), nc.subscribe(own(subjects.claims, ownId), { callback: batches }));
      const parts = await Promise.all(subs.map(track));
      return { stop: async () => void (await Promise.all(parts.map((part) => part.stop()))) };
    },
  };
}

/** The shared subject, or a replica's own beneath it (`atelier.control.claim.<replica>`). */
const own = (subject: string, replica: string | undefined) => (replica === undefined ? subject : `${subject}.${subjectToken(replica)}`);

/** A request's JSON body; undefined when it is none (a request nobody can answer goes unanswered). */
function parsed<T>(msg: Msg): T | undefined {
  try {
    return msg.json<T>() ?? undefined;
  } catch {
    return undefined;
  }
}

/** Answers a request; one that cannot be sent (over max_payload, a closed connection) goes unanswered, and its host asks again. */
function respond(msg: Msg, answer: unknown): void {
  try {
    msg.respond(JSON.stringify(answer));
  } catch {
    // unanswered
  }
}
