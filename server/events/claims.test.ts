// The claim server's answers as a host receives them (the in-process bus copies them as JSON, as NATS does): each run
// answer keeps what the orchestrator decided (execution, key, tracking), gains the protocol and the beat, and carries
// nothing unset; other verdicts go as they came. The run answer is made as one literal (stamped in claims.ts), so a
// field it forgot would show here.
import { afterEach, expect, it } from 'vitest';
import { createMemoryBus } from '../../plugins/bus/memory';
import { type AttemptClaim, type ClaimAnswer, PROTOCOL_VERSION } from '../../plugins/protocol';
import type { Service } from '../lifecycle';
import { createClaimServer } from './claims';

const claim = (taskId: string, execution?: number | null): AttemptClaim => ({ runId: 'r', taskId, attempt: 1, host: 'h', execution });
const key = '3f0c9a52-8d1e-4c1b-9a57-0b7c5d2e9f10';
const tracking = { uri: 'http://cp', runId: 'b', token: 'tok' };

let server: Service | undefined;
afterEach(async () => server?.stop());

it('answers run claims with the protocol and the beat beside what the orchestrator decided, and other verdicts as they are', async () => {
  const bus = createMemoryBus();
  const decided: Record<string, ClaimAnswer> = {
    a: { verdict: 'run', execution: 0, attemptKey: key },
    b: { verdict: 'run', execution: 3, attemptKey: key, tracking },
    c: { verdict: 'run' },
    d: { verdict: 'drop', reason: 'finished', status: 'SUCCEEDED' },
    e: { verdict: 'later', reason: 'recording' },
  };
  server = createClaimServer({
    bus,
    orchestrator: { answerClaims: async (claims) => claims.map((c) => ({ ...decided[c.taskId]! })) },
    log: () => undefined,
    heartbeatTimeoutMs: 2_000,
  });
  await server.start();
  const answers = await bus.requestClaims!(
    ['a', 'b', 'c', 'd', 'e'].map((id) => claim(id, null)),
    5_000,
  );
  const beat = { protocol: PROTOCOL_VERSION, heartbeatMs: 500 };
  expect(answers).toStrictEqual([
    { verdict: 'run', execution: 0, attemptKey: key, ...beat },
    { verdict: 'run', execution: 3, attemptKey: key, tracking, ...beat },
    { verdict: 'run', ...beat },
    { verdict: 'drop', reason: 'finished', status: 'SUCCEEDED' },
    { verdict: 'later', reason: 'recording' },
  ]);
});

it('answers a reserved claim at once the same way, and leaves the beat out when the control plane has no timeout', async () => {
  const bus = createMemoryBus();
  server = createClaimServer({
    bus,
    orchestrator: { answerClaims: async () => Promise.reject(new Error('a reserved claim asks no query')) },
    log: () => undefined,
    reservations: { answer: (c) => (c.taskId === 'a' ? { verdict: 'run', execution: 0, attemptKey: key } : undefined) },
  });
  await server.start();
  expect(await bus.requestClaim(claim('a', null), 5_000)).toStrictEqual({ verdict: 'run', execution: 0, attemptKey: key, protocol: PROTOCOL_VERSION });
});
