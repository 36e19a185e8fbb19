// The behaviour every Bus implementation must show (plugins/bus/types.ts), run against each one by its own
// test file. Timings are short (ack-wait 300 ms) so the suite stays fast on both the memory bus and JetStream.
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import type { Bus, Delivery } from '../../plugins/bus/types';
import type { CancelMessage, ExecutorEvent, HostHeartbeat, HotClusterCommand, TaskMessage } from '../../plugins/protocol';

const ACK_WAIT_MS = 300;

export function busContract(name: string, makeBus: () => Promise<Bus>, cleanup?: () => Promise<void>) {
  describe(`bus contract: ${name}`, () => {
    const buses: Bus[] = [];
    let pools = 0;

    async function open(): Promise<Bus> {
      const bus = await makeBus();
      buses.push(bus);
      return bus;
    }

    /** A pool name no other test uses, so a shared server's leftovers cannot leak in. */
    function freshPool() {
      return `pool${++pools}`;
    }

    afterEach(async () => {
      await Promise.all(buses.splice(0).map((bus) => bus.close()));
    });

    if (cleanup) afterAll(cleanup);

    describe('tasks', () => {
      it('delivers a published task once and forgets it once acked', async () => {
        const bus = await open();
        const pool = freshPool();
        await bus.publishTask(pool, task('t1'), 't1:1');
        const seen: Delivery<TaskMessage>[] = [];
        await bus.consumeTasks(
          pool,
          async (d) => {
            seen.push(d);
            await d.ack();
          },
          { durable: `pool-${pool}`, ackWaitMs: ACK_WAIT_MS },
        );
        await waitFor(() => seen.length === 1);
        expect(seen[0]!.data).toEqual(task('t1'));
        expect(seen[0]!.redeliveryCount).toBe(0);
        await sleep(ACK_WAIT_MS * 2);
        expect(seen).toHaveLength(1);
      });

      it('drops a republished msgId within the dedupe window', async () => {
        const bus = await open();
        const pool = freshPool();
        await bus.publishTask(pool, task('t1'), 't1:1');
        await bus.publishTask(pool, task('t1'), 't1:1');
        await bus.publishTask(pool, task('t2'), 't2:1');
        const seen: string[] = [];
        await bus.consumeTasks(
          pool,
          async (d) => {
            seen.push(d.data.taskId);
            await d.ack();
          },
          { durable: `pool-${pool}`, ackWaitMs: ACK_WAIT_MS, maxInFlight: 10 },
        );
        await waitFor(() => seen.length === 2);
        await sleep(100);
        expect(seen).toEqual(['t1', 't2']);
      });

      it('redelivers a task not acked within ackWait', async () => {
        const bus = await open();
        const pool = freshPool();
        const seen: { at: number; redeliveryCount: number }[] = [];
        await bus.consumeTasks(
          pool,
          async (d) => {
            seen.push({ at: Date.now(), redeliveryCount: d.redeliveryCount });
            if (d.redeliveryCount > 0) await d.ack();
          },
          { durable: `pool-${pool}`, ackWaitMs: ACK_WAIT_MS },
        );
        await bus.publishTask(pool, task('t1'), 't1:1');
        await waitFor(() => seen.length === 2, 3_000);
        expect(seen.map((s) => s.redeliveryCount)).toEqual([0, 1]);
        expect(seen[1]!.at - seen[0]!.at).toBeGreaterThanOrEqual(ACK_WAIT_MS - 50);
        await sleep(ACK_WAIT_MS * 2);
        expect(seen).toHaveLength(2);
      });

      it('does not redeliver while working() is called', async () => {
        const bus = await open();
        const pool = freshPool();
        let deliveries = 0;
        let done = false;
        await bus.consumeTasks(
          pool,
          async (d) => {
            deliveries++;
            for (let elapsed = 0; elapsed < ACK_WAIT_MS * 3; elapsed += ACK_WAIT_MS / 3) {
              await sleep(ACK_WAIT_MS / 3);
              d.working();
            }
            await d.ack();
            done = true;
          },
          { durable: `pool-${pool}`, ackWaitMs: ACK_WAIT_MS, maxInFlight: 2 },
        );
        await bus.publishTask(pool, task('t1'), 't1:1');
        await waitFor(() => done, 3_000);
        await sleep(ACK_WAIT_MS * 1.5);
        expect(deliveries).toBe(1);
      });

      it('redelivers after the delay given to nak()', async () => {
        const bus = await open();
        const pool = freshPool();
        const seen: { at: number; redeliveryCount: number }[] = [];
        await bus.consumeTasks(
          pool,
          async (d) => {
            seen.push({ at: Date.now(), redeliveryCount: d.redeliveryCount });
            if (seen.length === 1) d.nak(400);
            else await d.ack();
          },
          { durable: `pool-${pool}`, ackWaitMs: 5_000 },
        );
        await bus.publishTask(pool, task('t1'), 't1:1');
        await waitFor(() => seen.length === 2, 3_000);
        expect(seen[1]!.redeliveryCount).toBe(1);
        expect(seen[1]!.at - seen[0]!.at).toBeGreaterThanOrEqual(350);
      });

      it('redelivers at once on nak() without a delay', async () => {
        const bus = await open();
        const pool = freshPool();
        const seen: number[] = [];
        await bus.consumeTasks(
          pool,
          async (d) => {
            seen.push(Date.now());
            if (seen.length === 1) d.nak();
            else await d.ack();
          },
          { durable: `pool-${pool}`, ackWaitMs: 5_000 },
        );
        await bus.publishTask(pool, task('t1'), 't1:1');
        await waitFor(() => seen.length === 2, 1_000);
      });

      it('never redelivers a term()ed task', async () => {
        const bus = await open();
        const pool = freshPool();
        let deliveries = 0;
        await bus.consumeTasks(
          pool,
          async (d) => {
            deliveries++;
            d.term();
          },
          { durable: `pool-${pool}`, ackWaitMs: ACK_WAIT_MS },
        );
        await bus.publishTask(pool, task('t1'), 't1:1');
        await waitFor(() => deliveries === 1);
        await sleep(ACK_WAIT_MS * 2);
        expect(deliveries).toBe(1);
      });

      it('offers a task again after its handler throws', async () => {
        const bus = await open();
        const pool = freshPool();
        const counts: number[] = [];
        await bus.consumeTasks(
          pool,
          async (d) => {
            counts.push(d.redeliveryCount);
            if (counts.length === 1) throw new Error('boom');
            await d.ack();
          },
          { durable: `pool-${pool}`, ackWaitMs: 10_000 },
        );
        await bus.publishTask(pool, task('t1'), 't1:1');
        await waitFor(() => counts.length === 2, 4_000);
        expect(counts).toEqual([0, 1]);
      });

      it('hands out at most maxInFlight unacked tasks per subscription', async () => {
        const bus = await open();
        const pool = freshPool();
        const held: Delivery<TaskMessage>[] = [];
        let maxHeld = 0;
        let acked = 0;
        await bus.consumeTasks(
          pool,
          async (d) => {
            held.push(d);
            maxHeld = Math.max(maxHeld, held.length);
          },
          { durable: `pool-${pool}`, ackWaitMs: 5_000, maxInFlight: 3 },
        );
        await Promise.all(Array.from({ length: 10 }, (_, i) => bus.publishTask(pool, task(`t${i}`), `t${i}:1`)));
        await waitFor(() => held.length === 3);
        await sleep(150);
        expect(held).toHaveLength(3);
        while (acked < 10) {
          await waitFor(() => held.length > 0, 2_000);
          const d = held.shift()!;
          await d.ack();
          acked++;
        }
        expect(maxHeld).toBe(3);
      });

      it('shares a pool between subscriptions of one durable, each task to exactly one', async () => {
        const bus = await open();
        const pool = freshPool();
        const bySub: string[][] = [[], []];
        for (const index of [0, 1]) {
          await bus.consumeTasks(
            pool,
            async (d) => {
              bySub[index]!.push(d.data.taskId);
              await sleep(5);
              await d.ack();
            },
            { durable: `pool-${pool}`, ackWaitMs: 5_000, maxInFlight: 4 },
          );
        }
        const ids = Array.from({ length: 40 }, (_, i) => `t${i}`);
        await Promise.all(ids.map((id) => bus.publishTask(pool, task(id), `${id}:1`)));
        await waitFor(() => bySub[0]!.length + bySub[1]!.length === 40, 5_000);
        await sleep(100);
        const all = [...bySub[0]!, ...bySub[1]!];
        expect(all).toHaveLength(40);
        expect(new Set(all)).toEqual(new Set(ids));
        expect(bySub[0]!.length).toBeGreaterThan(0);
        expect(bySub[1]!.length).toBeGreaterThan(0);
      });

      it('keeps pools apart', async () => {
        const bus = await open();
        const [a, b] = [freshPool(), freshPool()];
        const seen: Record<string, string[]> = { [a]: [], [b]: [] };
        for (const pool of [a, b]) {
          await bus.consumeTasks(
            pool,
            async (d) => {
              seen[pool]!.push(d.data.taskId);
              await d.ack();
            },
            { durable: `pool-${pool}`, ackWaitMs: ACK_WAIT_MS, maxInFlight: 5 },
          );
        }
        await bus.publishTask(a, task('a1', a), 'a1:1');
        await bus.publishTask(b, task('b1', b), 'b1:1');
        await bus.publishTask(a, task('a2', a), 'a2:1');
        await waitFor(() => seen[a]!.length === 2 && seen[b]!.length === 1);
        await sleep(100);
        expect(seen[a]!.sort()).toEqual(['a1', 'a2']);
        expect(seen[b]).toEqual(['b1']);
      });

      it('rejects a second durable name on a pool: a work queue has one consumer per pool', async () => {
        const bus = await open();
        const pool = freshPool();
        await bus.consumeTasks(pool, async () => undefined, { durable: 'first', ackWaitMs: ACK_WAIT_MS });
        await expect(bus.consumeTasks(pool, async () => undefined, { durable: 'second', ackWaitMs: ACK_WAIT_MS })).rejects.toThrow(/one consumer per pool/);
      });

      it('lets another subscription take over unacked tasks when one stops', async () => {
        const bus = await open();
        const pool = freshPool();
        const first: string[] = [];
        const subscription = await bus.consumeTasks(
          pool,
          async (d) => {
            first.push(d.data.taskId);
          },
          { durable: `pool-${pool}`, ackWaitMs: 10_000, maxInFlight: 5 },
        );
        await bus.publishTask(pool, task('t1'), 't1:1');
        await bus.publishTask(pool, task('t2'), 't2:1');
        await waitFor(() => first.length === 2);
        await subscription.stop();
        const second: string[] = [];
        const counts: number[] = [];
        await bus.consumeTasks(
          pool,
          async (d) => {
            second.push(d.data.taskId);
            counts.push(d.redeliveryCount);
            await d.ack();
          },
          { durable: `pool-${pool}`, ackWaitMs: 10_000, maxInFlight: 5 },
        );
        // Well before the 10 s ack-wait: stopping hands the tasks back rather than letting them lapse.
        await waitFor(() => second.length === 2, 2_000);
        expect(second.sort()).toEqual(['t1', 't2']);
        expect(counts).toEqual([1, 1]);
        await bus.publishTask(pool, task('t3'), 't3:1');
        await waitFor(() => second.length === 3);
        await sleep(100);
        expect(second.sort()).toEqual(['t1', 't2', 't3']);
        expect(first).toHaveLength(2);
      });
    });

    describe('events', () => {
      it('delivers events to a durable consumer in order, in batches of at most maxBatch', async () => {
        const bus = await open();
        for (let seq = 1; seq <= 20; seq++) await bus.publishEvent(event(seq));
        const batches: number[][] = [];
        await bus.consumeEvents(
          async (deliveries) => {
            batches.push(deliveries.map((d) => d.data.seq));
            await sleep(20);
            await Promise.all(deliveries.map((d) => d.ack()));
          },
          { durable: 'recorder', ackWaitMs: 5_000, maxBatch: 8 },
        );
        await waitFor(() => batches.flat().length === 20, 3_000);
        expect(batches.flat()).toEqual(Array.from({ length: 20 }, (_, i) => i + 1));
        expect(Math.max(...batches.map((b) => b.length))).toBeLessThanOrEqual(8);
        expect(Math.max(...batches.map((b) => b.length))).toBeGreaterThan(1);
        await sleep(100);
        expect(batches.flat()).toHaveLength(20);
      });

      it('hands over a lone event at once, in a batch of one', async () => {
        const bus = await open();
        const batches: { at: number; size: number }[] = [];
        await bus.consumeEvents(
          async (deliveries) => {
            batches.push({ at: Date.now(), size: deliveries.length });
            await Promise.all(deliveries.map((d) => d.ack()));
          },
          { durable: 'recorder', ackWaitMs: 5_000 },
        );
        await sleep(50);
        const publishedAt = Date.now();
        await bus.publishEvent(event(1));
        await waitFor(() => batches.length === 1);
        expect(batches[0]!.size).toBe(1);
        expect(batches[0]!.at - publishedAt).toBeLessThan(100);
      });

      it('redelivers an event not acked within ackWait', async () => {
        const bus = await open();
        const counts: number[] = [];
        await bus.consumeEvents(
          async (deliveries) => {
            for (const d of deliveries) {
              counts.push(d.redeliveryCount);
              if (d.redeliveryCount > 0) await d.ack();
            }
          },
          { durable: 'recorder', ackWaitMs: ACK_WAIT_MS },
        );
        await bus.publishEvent(event(1));
        await waitFor(() => counts.length === 2, 3_000);
        expect(counts).toEqual([0, 1]);
        await sleep(ACK_WAIT_MS * 2);
        expect(counts).toHaveLength(2);
      });

      it('drops a republished event msgId', async () => {
        const bus = await open();
        await bus.publishEvent(event(1), 'e1');
        await bus.publishEvent(event(1), 'e1');
        await bus.publishEvent(event(2), 'e2');
        const seen: number[] = [];
        await bus.consumeEvents(
          async (deliveries) => {
            for (const d of deliveries) {
              seen.push(d.data.seq);
              await d.ack();
            }
          },
          { durable: 'recorder', ackWaitMs: ACK_WAIT_MS },
        );
        await waitFor(() => seen.length === 2);
        await sleep(100);
        expect(seen).toEqual([1, 2]);
      });

      it('splits a bundle into one delivery per event, drops a republished bundle id, and redelivers it whole while a member is unacked', async () => {
        const bus = await open();
        expect(bus.publishEvents, 'every bus implementation carries bundles (protocol 2)').toBeDefined();
        await bus.publishEvents!([event(1), event(2), event(3)], 'b1');
        await bus.publishEvents!([event(1), event(2), event(3)], 'b1');
        await bus.publishEvent(event(4), 'e4');
        const seen: { seq: number; redelivered: number }[] = [];
        const batches: number[][] = [];
        await bus.consumeEvents(
          async (deliveries) => {
            batches.push(deliveries.map((d) => d.data.seq));
            for (const d of deliveries) {
              seen.push({ seq: d.data.seq, redelivered: d.redeliveryCount });
              // The bundle's last member is left unacked the first time: the bundle comes back whole.
              if (d.data.seq !== 3 || d.redeliveryCount > 0) await d.ack();
            }
          },
          { durable: 'recorder', ackWaitMs: ACK_WAIT_MS },
        );
        await waitFor(() => seen.length === 7, 3_000);
        await sleep(ACK_WAIT_MS * 2);
        // A bundle's members reach the handler together, in order. Whether event 4 joins them depends on whether its
        // message came in the same socket read as the bundle's (a loaded machine splits them): not asserted.
        expect(batches[0]!.slice(0, 3)).toEqual([1, 2, 3]);
        expect(seen).toEqual([
          { seq: 1, redelivered: 0 },
          { seq: 2, redelivered: 0 },
          { seq: 3, redelivered: 0 },
          { seq: 4, redelivered: 0 },
          { seq: 1, redelivered: 1 },
          { seq: 2, redelivered: 1 },
          { seq: 3, redelivered: 1 },
        ]);
      });

      it("splits a bundle of several attempts' events (protocol 7) into one delivery per event, each its task's, and settles it once", async () => {
        const bus = await open();
        const of = (taskId: string, seq: number): ExecutorEvent => ({ ...event(seq), taskId });
        const bundle = [of('tA', 0), of('tA', 1), of('tB', 0), of('tB', 1), of('tC', 0)];
        const durable = 'recorder-combined';
        await bus.publishEvents!(bundle, 'tA:1:0:x+5');
        const admitted: string[][] = [];
        const seen: string[] = [];
        let held: Delivery<ExecutorEvent> | undefined;
        await bus.consumeEvents(
          async (deliveries) => {
            for (const d of deliveries) {
              seen.push(`${d.data.taskId}:${d.data.seq}`);
              // One attempt's event is acked last: the message is not settled before it.
              if (d.data.taskId === 'tB' && d.data.seq === 1 && !held) held = d;
              else await d.ack();
            }
          },
          { durable, ackWaitMs: 60_000, admit: (events) => admitted.push(events.map((e) => `${e.taskId}:${e.seq}`)) },
        );
        await waitFor(() => seen.length === 5 && held !== undefined);
        expect(seen).toEqual(['tA:0', 'tA:1', 'tB:0', 'tB:1', 'tC:0']);
        expect(admitted).toEqual([seen]);
        expect(await bus.eventBacklog(durable)).toEqual({ published: 1, recorded: 0 });
        await held!.ack();
        // One message, acked once all its events are: recorded, and never redelivered.
        await waitForAsync(async () => (await bus.eventBacklog(durable)).recorded === 1);
        await sleep(ACK_WAIT_MS * 2);
        expect(seen).toHaveLength(5);
      });

      it('gives every durable each event, shared among the subscriptions of one durable', async () => {
        const bus = await open();
        const shared: number[][] = [[], []];
        const alone: number[] = [];
        for (const index of [0, 1]) {
          await bus.consumeEvents(
            async (deliveries) => {
              for (const d of deliveries) {
                shared[index]!.push(d.data.seq);
                await d.ack();
              }
            },
            { durable: 'recorder', ackWaitMs: 5_000, maxInFlight: 4 },
          );
        }
        await bus.consumeEvents(
          async (deliveries) => {
            for (const d of deliveries) {
              alone.push(d.data.seq);
              await d.ack();
            }
          },
          { durable: 'auditor', ackWaitMs: 5_000 },
        );
        await Promise.all(Array.from({ length: 30 }, (_, i) => bus.publishEvent(event(i + 1))));
        await waitFor(() => shared[0]!.length + shared[1]!.length === 30 && alone.length === 30, 3_000);
        await sleep(100);
        const all = [...shared[0]!, ...shared[1]!].sort((x, y) => x - y);
        expect(all).toEqual(Array.from({ length: 30 }, (_, i) => i + 1));
        expect(alone.sort((x, y) => x - y)).toEqual(all);
      });

      it('lets another subscription take over unacked events when one stops', async () => {
        const bus = await open();
        const first: number[] = [];
        const subscription = await bus.consumeEvents(
          async (deliveries) => {
            first.push(...deliveries.map((d) => d.data.seq));
          },
          { durable: 'recorder', ackWaitMs: 10_000 },
        );
        await bus.publishEvent(event(1));
        await bus.publishEvent(event(2));
        await waitFor(() => first.length === 2);
        await subscription.stop();
        const second: number[] = [];
        await bus.consumeEvents(
          async (deliveries) => {
            for (const d of deliveries) {
              second.push(d.data.seq);
              await d.ack();
            }
          },
          { durable: 'recorder', ackWaitMs: 10_000 },
        );
        await waitFor(() => second.length === 2, 2_000);
        await bus.publishEvent(event(3));
        await waitFor(() => second.length === 3);
        await sleep(100);
        expect(second.sort()).toEqual([1, 2, 3]);
      });
    });

    describe('cancel', () => {
      it('broadcasts a cancel to every subscriber, and not to stopped ones', async () => {
        const bus = await open();
        const received: CancelMessage[][] = [[], []];
        const subscriptions = [await bus.subscribeCancel((m) => received[0]!.push(m)), await bus.subscribeCancel((m) => received[1]!.push(m))];
        const message: CancelMessage = { taskId: 't1', attempt: 1, reason: 'user asked' };
        await bus.publishCancel(message);
        await waitFor(() => received[0]!.length === 1 && received[1]!.length === 1);
        expect(received[0]![0]).toEqual(message);
        expect(received[1]![0]).toEqual(message);
        await subscriptions[0]!.stop();
        await bus.publishCancel({ ...message, attempt: 2 });
        await waitFor(() => received[1]!.length === 2);
        await sleep(50);
        expect(received[0]).toHaveLength(1);
      });
    });

    describe('control topics', () => {
      it("broadcasts each topic only to that topic's subscribers, and not to stopped ones", async () => {
        const bus = await open();
        const beats: HostHeartbeat[] = [];
        const commands: HotClusterCommand[] = [];
        const beatSubscription = await bus.subscribeControl('host-heartbeat', (m) => beats.push(m));
        await bus.subscribeControl('hot-cluster', (m) => commands.push(m));
        const beat: HostHeartbeat = {
          hostId: 'h-1',
          host: 'gpu-node-1',
          executors: ['local'],
          pools: ['gpu'],
          capacity: 4,
          running: 1,
          gpus: 8,
          hotClusters: [],
          hotClusterExecutors: ['local'],
          version: '0.1.0',
          startedAt: '2025-01-01T00:00:00.000Z',
          at: '2025-01-01T00:00:05.000Z',
        };
        await bus.publishControl('host-heartbeat', beat);
        await bus.publishControl('hot-cluster', { action: 'start', name: 'warm', executor: 'local', pool: 'gpu', spec: { workers: 2 } });
        await waitFor(() => beats.length === 1 && commands.length === 1);
        expect(beats[0]).toEqual(beat);
        expect(commands[0]!.name).toBe('warm');
        await beatSubscription.stop();
        await bus.publishControl('host-heartbeat', { ...beat, running: 2 });
        await bus.publishControl('hot-cluster', { action: 'end', name: 'warm', executor: 'local', pool: 'gpu', spec: {} });
        await waitFor(() => commands.length === 2);
        await sleep(50);
        expect(beats).toHaveLength(1);
      });
    });

    describe('event backlog', () => {
      it('says how far a durable has recorded: up to its first unacked event', async () => {
        const bus = await open();
        const durable = 'backlog-reader';
        const held: Delivery<ExecutorEvent>[] = [];
        await bus.consumeEvents(
          async (deliveries) => {
            for (const d of deliveries) {
              if (d.data.seq === 2 && held.length === 0) held.push(d);
              else await d.ack();
            }
          },
          { durable, ackWaitMs: 60_000 },
        );
        for (const seq of [1, 2, 3]) await bus.publishEvent(event(seq), `backlog-${seq}`);
        await waitForAsync(async () => (await bus.eventBacklog(durable)).recorded === 1 && held.length === 1);
        expect(await bus.eventBacklog(durable)).toEqual({ published: 3, recorded: 1 });
        await held[0]!.ack();
        await waitForAsync(async () => (await bus.eventBacklog(durable)).recorded === 3);
      });

      it('counts nothing as recorded by a durable that never read', async () => {
        const bus = await open();
        await bus.publishEvent(event(1), 'unread-1');
        expect(await bus.eventBacklog('nobody')).toEqual({ published: 1, recorded: 0 });
      });
    });

    describe('claims', () => {
      const claim = { taskId: 't1', runId: 'run-1', attempt: 1, host: 'host-1' };

      it('answers a claim from one server, and nothing when none serves or the server fails', async () => {
        const bus = await open();
        expect(await bus.requestClaim(claim, 200)).toBeUndefined();
        const asked: unknown[] = [];
        const serving = await bus.serveClaims(async (c) => {
          asked.push(c);
          return c.attempt === 1 ? { verdict: 'run' } : { verdict: 'drop', reason: 'superseded', status: 'RUNNING' };
        });
        expect(await bus.requestClaim(claim, 2_000)).toEqual({ verdict: 'run' });
        expect(await bus.requestClaim({ ...claim, attempt: 0 }, 2_000)).toEqual({ verdict: 'drop', reason: 'superseded', status: 'RUNNING' });
        expect(asked).toEqual([claim, { ...claim, attempt: 0 }]);
        await serving.stop();
        expect(await bus.requestClaim(claim, 200)).toBeUndefined();
        await bus.serveClaims(async () => {
          throw new Error('no database');
        });
        expect(await bus.requestClaim(claim, 200)).toBeUndefined();
      });

      it('answers a batch of claims (protocol 5) in one request, each answer to its own claim, and nothing when none serves or one fails', async () => {
        const bus = await open();
        const claims = [claim, { ...claim, attempt: 0 }, { ...claim, taskId: 't2' }];
        // Optional in the Bus interface (a host asks one by one without it); both of ours have it.
        if (!bus.requestClaims) throw new Error(`the ${bus.kind} bus cannot send claim batches`);
        expect(await bus.requestClaims(claims, 200)).toBeUndefined();
        const asked: unknown[] = [];
        const serving = await bus.serveClaims(async (c) => {
          asked.push(c);
          return c.attempt === 1 ? { verdict: 'run', execution: asked.length } : { verdict: 'drop', reason: 'superseded', status: 'RUNNING' };
        });
        expect(await bus.requestClaims(claims, 2_000)).toEqual([
          { verdict: 'run', execution: 1 },
          { verdict: 'drop', reason: 'superseded', status: 'RUNNING' },
          { verdict: 'run', execution: 3 },
        ]);
        expect(asked).toEqual(claims);
        await serving.stop();
        expect(await bus.requestClaims(claims, 200)).toBeUndefined();
        await bus.serveClaims(async (c) => {
          if (c.taskId === 't2') throw new Error('no database');
          return { verdict: 'run' };
        });
        expect(await bus.requestClaims(claims, 200)).toBeUndefined();
      });

      it('sends each claim to one of several servers', async () => {
        const bus = await open();
        let answered = 0;
        for (let i = 0; i < 2; i++)
          await bus.serveClaims(async () => {
            answered++;
            return { verdict: 'run' };
          });
        for (let i = 0; i < 4; i++) expect(await bus.requestClaim(claim, 2_000)).toEqual({ verdict: 'run' });
        await sleep(50);
        expect(answered).toBe(4);
      });

      it('sends a claim or a batch asked at a replica to the server serving as it alone, and nothing at once when none does', async () => {
        const bus = await open();
        if (!bus.requestClaims) throw new Error(`the ${bus.kind} bus cannot send claim batches`);
        const asked: string[] = [];
        const serving = ['a', 'b'].map((replica) =>
          bus.serveClaims(async (c) => {
            asked.push(`${replica}:${c.taskId}`);
            return { verdict: 'run', attemptKey: replica };
          }, `replica-${replica}`),
        );
        const [, b] = await Promise.all(serving);
        for (let i = 0; i < 4; i++) expect(await bus.requestClaim(claim, 2_000, 'replica-b')).toEqual({ verdict: 'run', attemptKey: 'b' });
        expect(await bus.requestClaims([claim, { ...claim, taskId: 't2' }], 2_000, 'replica-a')).toEqual([
          { verdict: 'run', attemptKey: 'a' },
          { verdict: 'run', attemptKey: 'a' },
        ]);
        expect(asked).toEqual(['b:t1', 'b:t1', 'b:t1', 'b:t1', 'a:t1', 'a:t2']);
        // Still one of the shared group's servers, for claims asked of any.
        expect(await bus.requestClaim(claim, 2_000)).toMatchObject({ verdict: 'run' });
        // A replica nobody serves (gone, or never there): no answer, without waiting out the time given (past the
        // test's own timeout).
        await b!.stop();
        expect(await bus.requestClaim(claim, 120_000, 'replica-b')).toBeUndefined();
        expect(await bus.requestClaims([claim], 120_000, 'replica-c')).toBeUndefined();
        expect(await bus.requestClaim(claim, 2_000, 'replica-a')).toEqual({ verdict: 'run', attemptKey: 'a' });
      });
    });

    describe('feed', () => {
      it('fans live events out to every subscriber, in order, and not to stopped ones', async () => {
        const bus = await open();
        const received: unknown[][][] = [[], []];
        const subscriptions = [await bus.subscribeFeed((e) => received[0]!.push(e)), await bus.subscribeFeed((e) => received[1]!.push(e))];
        for (let i = 0; i < 20; i++) bus.publishFeed([{ runId: 'r', seq: i }]);
        await waitFor(() => received[0]!.length === 20 && received[1]!.length === 20);
        expect(received[1]!.map((e) => (e[0] as { seq: number }).seq)).toEqual([...Array(20).keys()]);
        await subscriptions[0]!.stop();
        bus.publishFeed([{ runId: 'r', seq: 20 }]);
        await waitFor(() => received[1]!.length === 21);
        await sleep(50);
        expect(received[0]).toHaveLength(20);
      });

      it('hands a subscriber only the messages that arrive while it says it wants them', async () => {
        const bus = await open();
        let wanted = false;
        const received: unknown[][] = [];
        const all: unknown[][] = [];
        await bus.subscribeFeed(
          (e) => received.push(e),
          undefined,
          () => wanted,
        );
        await bus.subscribeFeed((e) => all.push(e));
        bus.publishFeed([{ runId: 'r', seq: 1 }]);
        await waitFor(() => all.length === 1);
        wanted = true;
        bus.publishFeed([{ runId: 'r', seq: 2 }]);
        await waitFor(() => received.length === 1);
        await sleep(50);
        expect(received.map((e) => (e[0] as { seq: number }).seq)).toEqual([2]);
      });
    });
  });
}

function task(taskId: string, pool = 'default'): TaskMessage {
  return {
    taskId,
    runId: 'run-1',
    attempt: 1,
    node: 'train',
    pool,
    executor: 'noop',
    module: { ref: 'team/train@1.0.0', digest: 'sha256:00', entrypoint: 'main.py', runtime: 'python3.11' },
    parameters: { lr: 0.1 },
    inputs: {},
    timeoutMs: 60_000,
    settings: {},
    enqueuedAt: '2025-01-01T00:00:00.000Z',
  };
}

function event(seq: number): ExecutorEvent {
  return { kind: 'heartbeat', taskId: 't1', runId: 'run-1', attempt: 1, seq, at: '2025-01-01T00:00:00.000Z', host: 'host-1' };
}

function sleep(ms: number) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

async function waitFor(condition: () => boolean, timeoutMs = 1_000) {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`condition not met within ${timeoutMs} ms`);
    await sleep(5);
  }
}

async function waitForAsync(condition: () => Promise<boolean>, timeoutMs = 3_000) {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`condition not met within ${timeoutMs} ms`);
    await sleep(20);
  }
}
