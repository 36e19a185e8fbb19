// The members of one bus message (a task batch, an event bundle) settle it together: acked when every member was,
// handed back once, after the last member settled, with the longest delay any member asked for.
import { describe, expect, it } from 'vitest';
import { splitBundle } from '../../plugins/bus/bundle';
import { SETTLED, type Settleable } from '../../plugins/bus/members';
import { isBatched, splitTaskBatch } from '../../plugins/bus/task-batch';

/** A bus message that records how it was settled. */
function message(data: unknown) {
  const log: string[] = [];
  const m: Settleable<unknown> & { log: string[] } = {
    data,
    redeliveryCount: 0,
    log,
    get settled() {
      return log.length > 0;
    },
    async ack() {
      log.push('ack');
    },
    nak(delayMs?: number) {
      log.push(`nak ${delayMs ?? 0}`);
    },
    working() {},
    term() {
      log.push('term');
    },
  };
  return m;
}

const bundle = (n: number) => ({ bundle: Array.from({ length: n }, (_, seq) => ({ seq })) });

describe('members of one message', () => {
  it('ack the message once, when the last member is acked', async () => {
    const m = message(bundle(3));
    const [a, b, c] = splitBundle(m);
    await a!.ack();
    await a!.ack(); // twice: counted once
    await b!.ack();
    expect(m.log).toEqual([]);
    expect(c!.settled).toBe(false);
    await c!.ack();
    expect(m.log).toEqual(['ack']);
  });

  it("answer a member ack but the last with one shared promise, and the last with its message's ack", async () => {
    const m = message(bundle(3));
    const [a, b, c] = splitBundle(m);
    const failing = new Error('the ack was not sent');
    m.ack = () => Promise.reject(failing);
    // A batch's ~2,000 members acked make no promise each: the recorder waits for the distinct ones (a message's last).
    expect(a!.ack()).toBe(b!.ack());
    expect(a!.ack()).toBe(SETTLED);
    await expect(c!.ack()).rejects.toBe(failing);
    expect(new Set([a, b, c].map((d) => d!.ack())).size).toBe(1); // settled already: nothing more to wait for
  });

  it('hand the message back only after every member settled, with the longest delay asked', async () => {
    const m = message(bundle(3));
    const [a, b, c] = splitBundle(m);
    a!.nak(500);
    b!.nak(2_000);
    expect(m.log).toEqual([]); // c still being handled: nothing is redelivered under it
    await c!.ack();
    expect(m.log).toEqual(['nak 2000']);
  });

  it('count a terminated member as done with', async () => {
    const m = message(bundle(2));
    const [a, b] = splitBundle(m);
    a!.term();
    await b!.ack();
    await new Promise((r) => setImmediate(r));
    expect(m.log).toEqual(['ack']);
  });

  it('ack an empty message at once, and hand a single item over as the message itself', async () => {
    const empty = message(bundle(0));
    expect(splitBundle(empty)).toEqual([]);
    await new Promise((r) => setImmediate(r));
    expect(empty.log).toEqual(['ack']);
    const single = message({ seq: 0 });
    expect(splitBundle(single)).toEqual([single]);
  });

  it('mark a task batch’s members as batched, and a lone task as not', () => {
    const batch = message({ tasks: [{ taskId: 't1' }, { taskId: 't2' }] });
    const members = splitTaskBatch(batch);
    expect(members).toHaveLength(2);
    expect(members.every((d) => isBatched(d))).toBe(true);
    const lone = message({ taskId: 't3' });
    expect(isBatched(splitTaskBatch(lone)[0]!)).toBe(false);
  });
});
