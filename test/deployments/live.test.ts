// `deploymentsChanged` over real graphql-ws clients, with the real reconciler and local deployer: a member of the
// owning team sees a deployment created, turning ready and deleted; a member of another team sees none of it and
// only its own team's; `model:` narrows to one model; and the one-deployment `deploymentChanged` follows the same
// watcher (its old per-subscriber polling is gone). Subscribers sharing a document and access share each change's
// execution (server/http/shared-results.ts), and sharing widens nobody's view.
import { eq } from 'drizzle-orm';
import { drizzle } from 'drizzle-orm/postgres-js';
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { Db } from '../../server/db/client';
import * as schema from '../../server/db/schema';
import { deployments } from '../../server/db/tables/deployments';
import { createDeploymentWatch } from '../../server/deployments/live';
import { sharingStats } from '../../server/http/shared-results';
import type { TestApp } from '../harness/app';
import type { ApiClient } from '../harness/client';
import { countingPool } from '../harness/counting-pool';
import { CREATE_DEPLOYMENT, deploymentWorld, endDeploymentWorld, irisVersion, until } from './setup';

const CHANGES = `subscription ($m: String) { deploymentsChanged(model: $m) { kind name deployment { name ready } } }`;

let t: TestApp;
let alice: ApiClient;
let bob: ApiClient;

beforeAll(async () => {
  ({ t, alice } = await deploymentWorld());
  bob = await t.user('bob');
  await t.team('cv', ['bob'], ['cv']);
  await irisVersion(t, 11, undefined, 'cv');
}, 60_000);
afterAll(() => endDeploymentWorld(t));

/** Follows a subscription until `done` says so; `at(match)` resolves with the first event that matches. */
function follow(client: ApiClient, variables: Record<string, unknown>, done: (e: any) => boolean) {
  const events: any[] = [];
  const waiters: (() => void)[] = [];
  const ended = client.subscribe(
    CHANGES,
    variables,
    (e: any) => done(e.deploymentsChanged),
    (e: any) => {
      events.push(e.deploymentsChanged);
      for (const w of waiters.splice(0)) w();
    },
  );
  const at = (match: (e: any) => boolean) =>
    new Promise<any>((resolve, reject) => {
      const look = () => {
        const hit = events.find(match);
        if (hit) resolve(hit);
        else waiters.push(look);
      };
      ended.catch(reject);
      look();
    });
  return { events, ended, at };
}

it('passes each deployment’s creation, changes and deletion to its team only', async () => {
  const a = follow(alice, {}, (e) => e.kind === 'DELETED' && e.name === 'live-a');
  const b = follow(bob, {}, (e) => e.kind === 'CREATED' && e.name === 'live-b');
  const narrowed = follow(alice, { m: 'ml/iris' }, (e) => e.kind === 'DELETED' && e.name === 'live-a');
  await Promise.all([a.at((e) => e.kind === 'LISTENING'), b.at((e) => e.kind === 'LISTENING'), narrowed.at((e) => e.kind === 'LISTENING')]);

  await alice.gql(CREATE_DEPLOYMENT, { i: { name: 'live-a', model: 'ml/iris/1', domain: 'experimentation' } });
  await a.at((e) => e.kind === 'CREATED' && e.name === 'live-a');
  await a.at((e) => e.name === 'live-a' && e.deployment?.ready);
  // bob's own deployment comes after alice's on the same watcher: had hers reached him, it would be before it
  await bob.gql(CREATE_DEPLOYMENT, { i: { name: 'live-b', model: 'cv/iris/11', domain: 'experimentation' } });
  await alice.gql(`mutation { deleteDeployment(id: "live-a") }`);

  const [mine, his, ofModel] = await Promise.all([a.ended, b.ended, narrowed.ended]);
  expect(mine.map((e: any) => e.deploymentsChanged.name).filter((n: string | null) => n && n !== 'live-a')).toEqual([]);
  expect(his.map((e: any) => e.deploymentsChanged.name)).toEqual([null, 'live-b']);
  expect(ofModel.map((e: any) => e.deploymentsChanged.kind)).toEqual(mine.map((e: any) => e.deploymentsChanged.kind));
  await bob.gql(`mutation { deleteDeployment(id: "live-b") }`);
}, 90_000);

it('follows one deployment with deploymentChanged until it is deleted', async () => {
  await alice.gql(CREATE_DEPLOYMENT, { i: { name: 'live-c', model: 'ml/iris/2', domain: 'experimentation' } });
  let first: () => void = () => {};
  const subscribed = new Promise<void>((resolve) => (first = resolve));
  const events = alice.subscribe(`subscription { deploymentChanged(id: "live-c") { name ready } }`, {}, undefined, () => first());
  await subscribed;
  await until('live-c ready', async () => (await alice.gql(`{ deployment(name: "live-c") { ready } }`)).deployment.ready);
  // another team's member is told it does not exist, as the query tells him
  await expect(bob.subscribe(`subscription { deploymentChanged(id: "live-c") { name } }`, {})).rejects.toThrow(/No deployment/);
  await alice.gql(`mutation { deleteDeployment(id: "live-c") }`);
  const all = await events; // it completes when the deployment is deleted
  expect(all.at(-1).deploymentChanged.ready).toBe(true);
}, 60_000);

it('executes each change once for all who share its document and access, and widens nobody’s view', async () => {
  const SHARED = `subscription { deploymentsChanged { kind name deployment { name ready viewerCan { manage } revisions { number state } } } }`;
  const carol = await t.user('carol', 'viewer');
  await t.api.gql(`mutation { setTeamMember(team: "ml", identity: "carol") { id } }`);
  const seen = new Map<string, any[][]>();
  const watch = (who: string, client: ApiClient, done: (e: any) => boolean) => {
    const events: any[] = [];
    seen.set(who, [...(seen.get(who) ?? []), events]);
    const ended = client.subscribe(
      SHARED,
      {},
      (e: any) => done(e.deploymentsChanged),
      (e: any) => events.push(e.deploymentsChanged),
    );
    ended.catch(() => undefined);
    return ended;
  };
  const deletedS = (e: any) => e.kind === 'DELETED' && e.name === 'live-s';
  const mine = [1, 2, 3, 4].map(() => watch('alice', alice, deletedS));
  const viewer = watch('carol', carol, deletedS);
  const his = [1, 2].map(() => watch('bob', bob, (e) => e.kind === 'CREATED' && e.name === 'live-b2'));
  const all = () => [...seen.values()].flat();
  await until('everyone listening', async () => all().every((events) => events[0]?.kind === 'LISTENING'));
  const before = { ...sharingStats };

  await alice.gql(CREATE_DEPLOYMENT, { i: { name: 'live-s', model: 'ml/iris/5', domain: 'experimentation' } });
  await until('live-s ready for everyone of its team', async () =>
    [...seen.get('alice')!, ...seen.get('carol')!].every((events) => events.some((e) => e.name === 'live-s' && e.deployment?.ready)),
  );
  await alice.gql(`mutation { deleteDeployment(id: "live-s") }`);
  const [alices, carols] = await Promise.all([Promise.all(mine), viewer]);
  const executed = sharingStats.executions - before.executions;
  const delivered = sharingStats.deliveries - before.deliveries;

  // Alice's four subscriptions got the same events; carol (her team, a viewer) the same changes, shown as a viewer sees them.
  const changes = alices[0]!.slice(1);
  for (const events of alices) expect(events.slice(1)).toEqual(changes);
  expect(carols.slice(1).map((e: any) => e.deploymentsChanged.kind)).toEqual(changes.map((e: any) => e.deploymentsChanged.kind));
  expect(changes.some((e: any) => e.deploymentsChanged.deployment?.viewerCan.manage)).toBe(true);
  expect(carols.some((e: any) => e.deploymentsChanged.deployment?.viewerCan.manage)).toBe(false);
  // One execution per change for alice's four, one for carol's: none for bob's, who saw none of it.
  expect(delivered).toBe(5 * changes.length);
  expect(executed).toBe(2 * changes.length);

  // Bob's own deployment comes after alice's on the same watcher: had any of hers reached him, it would be before it.
  await bob.gql(CREATE_DEPLOYMENT, { i: { name: 'live-b2', model: 'cv/iris/11', domain: 'experimentation' } });
  for (const events of await Promise.all(his)) expect(events.map((e: any) => e.deploymentsChanged.name)).toEqual([null, 'live-b2']);
  await bob.gql(`mutation { deleteDeployment(id: "live-b2") }`);
}, 90_000);

// A second connection to count the watcher's statements on: the embedded database has only one.
it.skipIf(process.env.ATELIER_TEST_DATABASE === 'embedded')(
  'reads nothing for a watched deployment while reconciler passes find it unchanged',
  async () => {
    await alice.gql(CREATE_DEPLOYMENT, { i: { name: 'live-q', model: 'ml/iris/6', domain: 'experimentation' } });
    await until('live-q ready', async () => (await alice.gql(`{ deployment(name: "live-q") { ready revisions { health } } }`)).deployment.ready);
    const { sql: client, seen } = countingPool(t.databaseUrl!);
    const watch = createDeploymentWatch(drizzle(client, { schema }) as unknown as Db, t.app.services.liveChanges, (e) => {
      throw e;
    });
    const stop = new AbortController();
    const { ready, events } = watch.stream(stop.signal);
    await ready;
    const [{ id }] = (await t.app.services.db.select({ id: deployments.id }).from(deployments).where(eq(deployments.name, 'live-q'))) as [{ id: string }];
    const checkedAt = async () =>
      (await t.app.services.db.select({ at: deployments.checkedAt }).from(deployments).where(eq(deployments.id, id)))[0]!.at.getTime();

    // Passes that find it as it was (ready, same split, same health): counted from the first one that started after this mark.
    const mark = seen.sent.length;
    const passes = new Set([await checkedAt()]);
    await until('six reconciler passes', async () => passes.add(await checkedAt()).size > 6, 30_000);
    const quiet = seen.sent.slice(mark).map((s) => s.statement);

    // A change is still read and passed on: its deletion.
    await alice.gql(`mutation { deleteDeployment(id: "live-q") }`);
    let change = await events.next();
    while (change.value?.kind !== 'DELETED') change = await events.next();
    stop.abort();
    await client.end({ timeout: 1 });
    expect(quiet).toEqual([]);
  },
  60_000,
);
