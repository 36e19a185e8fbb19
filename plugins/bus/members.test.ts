import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { Member, type Settleable, splitMessage, WORKING_COALESCE_MS } from './members';
import { splitTaskBatch } from './task-batch';

/** A bus message as members see it, counting what is sent for it. */
function busMessage(data?: unknown) {
  const sent = { working: 0, acks: 0 };
  const msg: Settleable<unknown> = {
    data,
    redeliveryCount: 0,
    settled: false,
    ack: async () => {
      sent.acks++;
    },
    nak: () => undefined,
    working: () => {
      sent.working++;
    },
    term: () => undefined,
  };
  return { sent, msg };
}

/** A message of `items` members. */
function message(items: number) {
  const { sent, msg } = busMessage();
  return {
    sent,
    members: splitMessage(
      msg,
      Array.from({ length: items }, (_, i) => i),
      Member,
    ),
  };
}

describe('Member.working', () => {
  beforeEach(() => {
    vi.useFakeTimers({ toFake: ['performance'] });
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it("extends the message's ack wait once for the members that say so together, and again once the window has passed", () => {
    const { sent, members } = message(100);
    for (const m of members) m.working(); // a task batch's claims, asked in one turn
    expect(sent.working).toBe(1);
    vi.advanceTimersByTime(WORKING_COALESCE_MS - 1);
    members[7]!.working();
    expect(sent.working).toBe(1);
    vi.advanceTimersByTime(1);
    members[7]!.working(); // a heartbeat later on
    members[8]!.working();
    expect(sent.working).toBe(2);
  });

  it("counts a task batch's delivery as its first extension: its members' working() in the turn it came (before their claims) send nothing", () => {
    const tasks = Array.from({ length: 100 }, (_, i) => ({ taskId: `t${i}` }));
    const { sent, msg } = busMessage({ tasks });
    const members = splitTaskBatch(msg);
    expect(members).toHaveLength(100);
    for (const m of members) m.working();
    expect(sent.working).toBe(0);
    vi.advanceTimersByTime(WORKING_COALESCE_MS);
    members[3]!.working(); // a heartbeat later on
    expect(sent.working).toBe(1);
  });

  it("keeps each message's window its own", () => {
    const a = message(3);
    const b = message(3);
    a.members[0]!.working();
    b.members[0]!.working();
    a.members[1]!.working();
    expect([a.sent.working, b.sent.working]).toEqual([1, 1]);
  });
});
