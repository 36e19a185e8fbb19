// What the driver keeps of a transaction once it has ended (issue 21: S1's control plane held ~1 KB a task until its
// run ended): postgres-js keeps a connection's last transaction until the connection begins another (the handler of
// its closing statement, reached from the connection's `onclose`), and the first stack of each statement text for as
// long as the process runs (the origin of its errors, with the closures on it: the COMMIT that commitBehind sends
// names `mayCommit`). Through those, the transaction's function and its result, and so all of a transaction's work
// (a 10,000-task startRun's messages and events, 11 MB), stayed reachable. retryingTransaction and commitBehind let go
// of both once the transaction has ended. Real Postgres, a full collection (`gc` exposed at run time), weak references.
import { mkdtemp } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { sql } from 'drizzle-orm';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { commitBehind, type Database, openDatabase, retryingTransaction } from '../../server/db/client';
import { type PostgresServer, startPostgres } from '../harness/postgres';

let pg: PostgresServer;
let database: Database;

beforeAll(async () => {
  pg = await startPostgres();
  database = await openDatabase({ url: pg.url, dataDir: await mkdtemp(path.join(os.tmpdir(), 'atelier-retention-')) });
}, 60_000);
afterAll(async () => {
  await database?.close();
  await pg?.stop();
});

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

/** Whether `ref`'s object is still reachable after a full collection (a turn later: a new weak target lives through its turn). */
async function reachable(ref: WeakRef<object>): Promise<boolean> {
  await new Promise((resolve) => setImmediate(resolve));
  gc();
  return ref.deref() !== undefined;
}

/** A transaction whose work and result are one object, committed behind; a weak reference to that object. */
async function transactionOnce(): Promise<WeakRef<object>> {
  let ref: WeakRef<object> | undefined;
  const result = await retryingTransaction(database.db, async (tx) => {
    const work = { rows: Array.from({ length: 100 }, (_, n) => ({ n })) };
    ref = new WeakRef(work);
    await tx.execute(sql`select 1`);
    // The COMMIT asks `mayCommit` (and so holds it) when it is sent.
    commitBehind(tx, () => work.rows.length > 0);
    return work;
  });
  expect(result.rows).toHaveLength(100);
  return ref!;
}

it("keeps neither a transaction's work nor its result once it has ended", async () => {
  const refs: WeakRef<object>[] = [];
  for (let i = 0; i < 3; i++) refs.push(await transactionOnce());
  expect(await Promise.all(refs.map(reachable))).toEqual([false, false, false]);
});
