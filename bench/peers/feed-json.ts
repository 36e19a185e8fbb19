// The feed's JSON for a batch of no-op tasks' events (session 32), without Postgres or NATS: what the control plane's
// JavaScript spends on the append's run_events rows and the live publish's messages as they are made (the rows' JSON
// whole, then every numbered event again in packWithin), against two ways of serializing each event once and building
// both from its string: the numbered event remembering its JSON in a WeakMap (what branch ser32 first did), and the
// strings passed along in an array. CPU µs a task (three events: its progress, RUNNING, SUCCEEDED), median of rounds
// run in turns. `npx tsx bench/peers/feed-json.ts [tasks a batch] [rounds]`.
import { randomUUID } from 'node:crypto';
import { packWithin } from '../../plugins/bus/payload-limit';
import type { FeedEvent, FeedEventBody } from '../../server/events/feed';
import { storedForm } from '../../server/events/feed-metric-points';
import { EVENTS_PER_ROW } from '../../server/events/run-event-log';
import { runWhenMain } from '../lib';

const MAX = 1024 * 1024;
const tooLarge = (e: unknown) => ({ kind: 'stored', runId: (e as FeedEvent).runId, seq: (e as FeedEvent).seq });

/** A batch's feed events as the recorder makes them for `tasks` no-op tasks of one run. */
function batch(tasks: number): FeedEventBody[] {
  const runId = randomUUID();
  const at = new Date().toISOString();
  return Array.from({ length: tasks }, (_, i) => {
    const task = { runId, taskId: randomUUID(), node: `t${i}`, at };
    const status = { ...task, attempt: 1, reason: null, message: null };
    return [
      { kind: 'task-progress', ...task, fraction: 1, message: 'done' },
      { kind: 'task-status', ...status, status: 'RUNNING' },
      { kind: 'task-status', ...status, status: 'SUCCEEDED' },
    ] as FeedEventBody[];
  }).flat();
}

/** Numbered as appendRunEvents numbers them: a copy, its `seq` set last. */
const number = (list: FeedEventBody[]) =>
  list.map((e, i) => {
    const numbered = Object.assign({}, e) as FeedEvent;
    numbered.seq = i + 1;
    return numbered;
  });

/** As today: the rows' JSON whole, then packWithin serializing every numbered event. */
function today(list: FeedEventBody[]): number {
  const groups: { last: number; event: { events: unknown[] } }[] = [];
  for (let i = 0; i < list.length; i += EVENTS_PER_ROW) {
    const events = list.slice(i, i + EVENTS_PER_ROW).map(storedForm);
    groups.push({ last: i + events.length, event: { events } });
  }
  return JSON.stringify(groups).length + packWithin(number(list), MAX, tooLarge).reduce((n, m) => n + m.length, 0);
}

/** Each event serialized once; the rows' JSON joined from the strings. */
function rowsOnce(list: FeedEventBody[]): { jsons: string[]; rows: string } {
  const jsons = list.map((e) => JSON.stringify(storedForm(e)));
  const groups: string[] = [];
  for (let i = 0; i < list.length; i += EVENTS_PER_ROW) {
    const events = jsons.slice(i, i + EVENTS_PER_ROW);
    groups.push(`{"last":${i + events.length},"event":{"events":[${events.join(',')}]}}`);
  }
  return { jsons, rows: `[${groups.join(',')}]` };
}

/** The message from the events' strings, `seq` spliced in last (byte for byte JSON.stringify; one message fits here). */
const message = (numbered: FeedEvent[], json: (e: FeedEvent, i: number) => string) =>
  `[${numbered.map((e, i) => `${json(e, i).slice(0, -1)},"seq":${e.seq}}`).join(',')}]`;

const remembered = new WeakMap<FeedEvent, string>();
/** Once, each numbered event remembering its JSON in a WeakMap until the publish. */
function onceWeakMap(list: FeedEventBody[]): number {
  const { jsons, rows } = rowsOnce(list);
  const numbered = number(list);
  for (let i = 0; i < numbered.length; i++) remembered.set(numbered[i]!, jsons[i]!);
  return rows.length + message(numbered, (e) => remembered.get(e)!).length;
}

/** Once, the strings passed along in an array. */
function onceArray(list: FeedEventBody[]): number {
  const { jsons, rows } = rowsOnce(list);
  return rows.length + message(number(list), (_, i) => jsons[i]!).length;
}

export async function feedJsonBench(tasks: number, rounds: number) {
  const batches = Array.from({ length: 50 }, () => batch(tasks));
  const ways = { today, onceWeakMap, onceArray };
  if (onceArray(batches[0]!) !== today(batches[0]!)) throw new Error('not the same bytes');
  const time = (f: (l: FeedEventBody[]) => number) => {
    const t0 = process.cpuUsage();
    for (const b of batches) f(b);
    const t = process.cpuUsage(t0);
    return (t.user + t.system) / (batches.length * tasks);
  };
  const times = new Map(Object.keys(ways).map((k) => [k, [] as number[]]));
  for (let i = 0; i < rounds + 5; i++) for (const [name, f] of Object.entries(ways)) if (i >= 5) times.get(name)!.push(time(f));
  const median = (x: number[]) => x.sort((p, q) => p - q)[Math.floor(x.length / 2)]!;
  console.log(
    `${tasks} tasks a batch, CPU µs a task (median of ${rounds} rounds in turns): ${[...times].map(([k, v]) => `${k} ${median(v).toFixed(2)}`).join(', ')}`,
  );
  return [];
}

runWhenMain(import.meta.url, () => feedJsonBench(Number(process.argv[2] ?? 680), Number(process.argv[3] ?? 21)));
