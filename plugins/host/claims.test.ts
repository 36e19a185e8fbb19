// The host's claim asker alone, on a fake bus: claims asked in one tick go as one request from a host's first tick (a
// first batch that goes unanswered is asked one by one at once), and one by one with a control plane below 5 and after
// a batch went unanswered.
import { describe, expect, it } from 'vitest';
import type { AttemptClaim, ClaimAnswer } from '../protocol';
import { CLAIM_BYTES, createClaimAsker, MAX_CLAIM_BATCH } from './claims';

const claim = (n: number): AttemptClaim => ({ taskId: `t${n}`, runId: 'r', attempt: 1, host: 'h', execution: null });

function fakeBus(protocol: number | undefined, options: { batchesAnswered?: boolean; replicas?: string[] } = {}) {
  const requests: string[][] = [];
  /** Where each request went: a replica's id, or `any` for the shared subject. */
  const asked: string[] = [];
  /** A replica that does not serve its own subject answers nothing (NATS: no responders). */
  const serves = (at: string | undefined) => at === undefined || (options.replicas ?? []).includes(at);
  const answer = (c: AttemptClaim): ClaimAnswer =>
    c.taskId === 't-gone'
      ? { verdict: 'drop', reason: 'finished' }
      : { verdict: 'run', ...(protocol ? { protocol } : {}), execution: Number(c.taskId.slice(1)) };
  const bus = {
    async requestClaim(c: AttemptClaim, _timeoutMs: number, at?: string) {
      asked.push(at ?? 'any');
      if (!serves(at)) return undefined;
      requests.push([c.taskId]);
      return answer(c);
    },
    async requestClaims(cs: AttemptClaim[], _timeoutMs: number, at?: string) {
      asked.push(at ?? 'any');
      if (!serves(at)) return undefined;
      requests.push(cs.map((c) => c.taskId));
      return options.batchesAnswered === false ? undefined : cs.map(answer);
    },
  };
  return { bus, requests, asked };
}

const range = (from: number, count: number) => Array.from({ length: count }, (_, i) => claim(from + i));

describe('createClaimAsker', () => {
  it('asks the claims of one tick in one request once a run answer said protocol 5, each answer to its own claim', async () => {
    const { bus, requests } = fakeBus(5);
    const ask = createClaimAsker(bus, 1_000);
    expect(await ask(claim(0))).toEqual({ verdict: 'run', protocol: 5, execution: 0 });
    const answers = await Promise.all([...range(1, 3), { ...claim(9), taskId: 't-gone' }].map((c) => ask(c)));
    expect(answers.map((a) => (a?.verdict === 'run' ? a.execution : a?.verdict))).toEqual([1, 2, 3, 'drop']);
    expect(requests).toEqual([['t0'], ['t1', 't2', 't3', 't-gone']]);
  });

  it('asks a fresh host’s first tick of claims in one request, before any answer said which protocol the control plane reads', async () => {
    const { bus, requests } = fakeBus(5);
    const ask = createClaimAsker(bus, 1_000);
    const answers = await Promise.all(range(0, 3).map((c) => ask(c)));
    expect(answers.map((a) => (a?.verdict === 'run' ? a.execution : a))).toEqual([0, 1, 2]);
    await Promise.all(range(3, 2).map((c) => ask(c)));
    expect(requests).toEqual([
      ['t0', 't1', 't2'],
      ['t3', 't4'],
    ]);
  });

  it('asks the claims of a first batch that went unanswered one by one at once (a control plane below 5), and one by one after', async () => {
    for (const protocol of [4, undefined]) {
      const { bus, requests } = fakeBus(protocol, { batchesAnswered: false });
      const ask = createClaimAsker(bus, 1_000);
      const answers = await Promise.all(range(0, 3).map((c) => ask(c)));
      expect(answers.map((a) => (a?.verdict === 'run' ? a.execution : a))).toEqual([0, 1, 2]);
      await Promise.all(range(3, 2).map((c) => ask(c)));
      expect(requests).toEqual([['t0', 't1', 't2'], ['t0'], ['t1'], ['t2'], ['t3'], ['t4']]);
    }
  });

  it('asks a lone claim on its own, and splits a large tick into requests of at most MAX_CLAIM_BATCH', async () => {
    const { bus, requests } = fakeBus(5);
    const ask = createClaimAsker(bus, 1_000);
    await ask(claim(0));
    await ask(claim(1));
    await Promise.all(range(2, MAX_CLAIM_BATCH + 1).map((c) => ask(c)));
    expect(requests.map((r) => r.length)).toEqual([1, 1, MAX_CLAIM_BATCH, 1]);
  });

  it('keeps a batch within the bus’s payload limit, CLAIM_BYTES a claim', async () => {
    const { bus, requests } = fakeBus(5);
    const ask = createClaimAsker({ ...bus, maxPayloadBytes: () => 10 * CLAIM_BYTES }, 1_000);
    await ask(claim(0));
    await Promise.all(range(1, 25).map((c) => ask(c)));
    expect(requests.map((r) => r.length)).toEqual([1, 10, 10, 5]);
  });

  it('asks one by one while the control plane is below 5, or says no protocol', async () => {
    for (const protocol of [4, undefined]) {
      const { bus, requests } = fakeBus(protocol);
      const ask = createClaimAsker(bus, 1_000);
      await ask(claim(0));
      await Promise.all(range(1, 3).map((c) => ask(c)));
      expect(requests).toEqual([['t0'], ['t1'], ['t2'], ['t3']]);
    }
  });

  it('answers nothing to a batch that got no answer, and asks one by one again until a run answer says 5', async () => {
    const { bus, requests } = fakeBus(5, { batchesAnswered: false });
    const ask = createClaimAsker(bus, 1_000);
    await ask(claim(0));
    expect(await Promise.all(range(1, 2).map((c) => ask(c)))).toEqual([undefined, undefined]);
    await Promise.all(range(3, 2).map((c) => ask(c))); // one by one again (both asked before t3’s answer said 5)
    expect(requests).toEqual([['t0'], ['t1', 't2'], ['t3'], ['t4']]);
  });

  it('asks one by one on a bus that cannot send batches', async () => {
    const { bus, requests } = fakeBus(5);
    const ask = createClaimAsker({ requestClaim: bus.requestClaim }, 1_000);
    await ask(claim(0));
    await Promise.all(range(1, 2).map((c) => ask(c)));
    expect(requests).toEqual([['t0'], ['t1'], ['t2']]);
  });

  it('asks a claim at the replica named, alone and in batches of that replica, and of any replica when it does not answer', async () => {
    const { bus, requests, asked } = fakeBus(5, { replicas: ['a'] });
    const ask = createClaimAsker(bus, 1_000);
    expect(await ask(claim(0), 'a')).toMatchObject({ verdict: 'run', execution: 0 });
    // Gone (or older): asked again of any replica.
    expect(await ask(claim(1), 'gone')).toMatchObject({ verdict: 'run', execution: 1 });
    expect(asked).toEqual(['a', 'gone', 'any']);
    asked.length = 0;
    requests.length = 0;
    // One tick's claims: a request per replica named, and one for those named none.
    const answers = await Promise.all([ask(claim(2), 'a'), ask(claim(3)), ask(claim(4), 'a'), ask(claim(5), 'gone'), ask(claim(6), 'gone')]);
    expect(answers.map((a) => (a?.verdict === 'run' ? a.execution : a))).toEqual([2, 3, 4, 5, 6]);
    expect(asked).toEqual(['a', 'any', 'gone', 'any']);
    expect(requests).toEqual([['t2', 't4'], ['t3'], ['t5', 't6']]);
  });
});
