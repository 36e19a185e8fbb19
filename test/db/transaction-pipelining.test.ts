// Round trips the driver takes out (Atelier's patch of postgres@3.4.9 in server/db/patches, issue 21): an unnamed
// statement with parameters (every drizzle query) is sent whole, not described first and bound once the description
// has come back; a transaction's BEGIN is pipelined with its first statements, and the connection it takes stays its
// transaction's alone meanwhile (no query of the pool is pipelined into the transaction, to be rolled back with it).
// Real Postgres, the driver itself.
import postgres from 'postgres';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { countingPool as wirePool } from '../harness/counting-pool';
import { type PostgresServer, startPostgres } from '../harness/postgres';

let server: PostgresServer;

beforeAll(async () => {
  server = await startPostgres();
  const sql = postgres(server.url, { max: 1, onnotice: () => undefined });
  await sql`create table pipelining_probe (id int primary key)`;
  await sql.end({ timeout: 1 });
}, 60_000);

afterAll(async () => {
  await server?.stop();
}, 30_000);

const countingPool = () => wirePool(server.url);

it('sends an unnamed statement with parameters in one round trip, its values read as before', async () => {
  const { sql, seen } = countingPool();
  try {
    await sql`select 1`;
    const before = seen.received;
    // What drizzle sends: unsafe, not prepared. Strings and numbers go as text, the server types them from the SQL.
    const [row] = await sql.unsafe('select $1::int + $2::int as sum, $3::text as t, $4::jsonb as j, $5::uuid[] as ids, $6::int as n', [
      2,
      3,
      'a"b',
      '{"k":[1]}',
      '{"00000000-0000-0000-0000-000000000001"}',
      null,
    ]);
    expect(seen.received - before).toBe(1);
    expect(row).toEqual({ sum: 5, t: 'a"b', j: { k: [1] }, ids: ['00000000-0000-0000-0000-000000000001'], n: null });
    // A value that needs the server's type to be written (a JS array) is still described first, and written right.
    const [arrays] = await sql.unsafe('select $1::int[] as xs', [[1, 2]]);
    expect(arrays).toEqual({ xs: [1, 2] });
  } finally {
    await sql.end({ timeout: 1 });
  }
});

it("sends a transaction's first statement before BEGIN's answer has come back", async () => {
  const { sql, seen } = countingPool();
  const sent = seen.sent;
  try {
    await sql`select 1`; // the connection is open and idle
    sent.length = 0;
    const rows = await sql.begin(async (tx) => {
      const [first] = await tx`select txid_current() as id`;
      const [second] = await tx`select txid_current() as id`;
      return [first!.id, second!.id];
    });
    expect(sent.map((s) => s.statement)).toEqual(['begin ', 'select txid_current() as id', 'select txid_current() as id', 'commit']);
    expect(sent[1]!.received).toBe(sent[0]!.received);
    // Both statements ran in the one transaction.
    expect(rows[0]).toBe(rows[1]);
  } finally {
    await sql.end({ timeout: 1 });
  }
});

it('runs no query of the pool inside a transaction whose BEGIN is in flight', async () => {
  const sql = postgres(server.url, { max: 1, onnotice: () => undefined });
  try {
    await sql`select 1`;
    const failed = sql.begin(async (tx) => {
      await tx`insert into pipelining_probe (id) values (1)`;
      throw new Error('rolled back on purpose');
    });
    // Issued while the BEGIN is in flight on the only connection: it must wait for the transaction, not join it.
    const outside = sql`insert into pipelining_probe (id) values (2)`.execute();
    await expect(failed).rejects.toThrow('rolled back on purpose');
    await outside;
    const ids = await sql<{ id: number }[]>`select id from pipelining_probe order by id`;
    expect(ids.map((r) => r.id)).toEqual([2]);
  } finally {
    await sql.end({ timeout: 1 });
  }
});

type CommitBehind = { commitBehind: (mayCommit?: () => boolean) => void };

it('sends the COMMIT of commitBehind behind the last statement, before its answer, and commits', async () => {
  const { sql, seen } = countingPool();
  try {
    await sql`select 1`;
    seen.sent.length = 0;
    await sql.begin(async (tx) => {
      await tx.unsafe('insert into pipelining_probe (id) values ($1)', [10]);
      const last = tx.unsafe('insert into pipelining_probe (id) values ($1)', [11]).execute();
      (tx as unknown as CommitBehind).commitBehind();
      await last;
    });
    expect(seen.sent.map((s) => s.statement).slice(-2)).toEqual(['insert into pipelining_probe (id) values ($1)', 'commit']);
    expect(seen.sent.at(-1)!.received).toBe(seen.sent.at(-2)!.received);
    expect((await sql`select id from pipelining_probe where id in (10, 11) order by id`).map((r) => r.id)).toEqual([10, 11]);
  } finally {
    await sql.end({ timeout: 1 });
  }
});

it('fails with the error of a statement the COMMIT was sent behind, and keeps none of the transaction', async () => {
  const sql = postgres(server.url, { max: 1, onnotice: () => undefined });
  try {
    const failed = sql.begin(async (tx) => {
      await tx.unsafe('insert into pipelining_probe (id) values ($1)', [20]);
      const last = tx.unsafe('insert into pipelining_probe (id) values ($1)', [20]).execute();
      (tx as unknown as CommitBehind).commitBehind();
      await last;
    });
    await expect(failed).rejects.toMatchObject({ code: '23505' });
    // Refused before it was sent: a ROLLBACK goes instead.
    const refused = sql.begin(async (tx) => {
      const last = tx.unsafe('insert into pipelining_probe (id) values ($1)', [21]).execute();
      (tx as unknown as CommitBehind).commitBehind(() => false);
      await last;
    });
    await expect(refused).rejects.toMatchObject({ code: 'ROLLED_BACK' });
    expect(await sql`select id from pipelining_probe where id in (20, 21)`).toEqual([]);
    // The connection is the pool's again, out of any transaction.
    expect((await sql`select count(*)::int as n from pipelining_probe where id = 20`)[0]!.n).toBe(0);
  } finally {
    await sql.end({ timeout: 1 });
  }
});

it('refuses, unsent, a statement issued on a transaction after its COMMIT was sent', async () => {
  const sql = postgres(server.url, { max: 1, onnotice: () => undefined });
  try {
    let late: Promise<unknown> | undefined;
    await sql.begin(async (tx) => {
      const first = tx.unsafe('insert into pipelining_probe (id) values ($1)', [30]).execute();
      (tx as unknown as CommitBehind).commitBehind();
      // A promise chain that goes on past the commit: its statement would run outside the transaction.
      late = first.then(() => tx.unsafe('insert into pipelining_probe (id) values ($1)', [31]));
      late.catch(() => undefined);
      await first;
    });
    await expect(late).rejects.toMatchObject({ code: 'TRANSACTION_ENDED' });
    expect((await sql`select id from pipelining_probe where id in (30, 31)`).map((r) => r.id)).toEqual([30]);
  } finally {
    await sql.end({ timeout: 1 });
  }
});

it('fails a transaction whose connection dies under it', async () => {
  const sql = postgres(server.url, { max: 2, onnotice: () => undefined });
  try {
    const killed = sql.begin(async (tx) => {
      const [backend] = await tx<{ pid: number }[]>`select pg_backend_pid() as pid`;
      await sql`select pg_terminate_backend(${backend!.pid})`;
      await tx`insert into pipelining_probe (id) values (3)`;
    });
    await expect(killed).rejects.toThrow();
  } finally {
    await sql.end({ timeout: 1 });
  }
  const check = postgres(server.url, { max: 1, onnotice: () => undefined });
  try {
    expect(await check`select id from pipelining_probe where id = 3`).toHaveLength(0);
  } finally {
    await check.end({ timeout: 1 });
  }
});

it("rolls back a pipelined transaction whose statement fails, with that statement's error", async () => {
  const sql = postgres(server.url, { max: 1, onnotice: () => undefined });
  try {
    const bad = sql.begin(async (tx) => {
      await tx.unsafe('insert into pipelining_probe (id) values ($1)', [4]);
      await tx.unsafe('insert into pipelining_probe (id) values ($1)', [4]);
    });
    await expect(bad).rejects.toMatchObject({ code: '23505' });
    expect(await sql`select id from pipelining_probe where id = 4`).toHaveLength(0);
  } finally {
    await sql.end({ timeout: 1 });
  }
});

it("takes a BEGIN's connection for its transaction even when the BEGIN fills the connection's pipeline", async () => {
  // Two connections take pooled statements in turn; each holds at most 100 in flight (the driver's max_pipeline). A
  // BEGIN that is the 100th in flight on its connection was sent without the connection being made its transaction's:
  // its answer then failed the transaction with UNSAFE_TRANSACTION (seen once in ~20 runs of the peers bench's S4,
  // 1,000 subscribers' snapshot transactions among their other statements). Some count of statements before the BEGIN
  // puts it at that place; every one of those transactions must commit.
  const sql = postgres(server.url, { max: 2, onnotice: () => undefined });
  try {
    await Promise.all([sql`select 1`, sql`select 2`]); // both connections open
    for (let before = 190; before <= 210; before++) {
      const pooled = Array.from({ length: before }, () => sql`select 1 as one`.execute());
      const transaction = sql.begin(async (tx) => (await tx`select 2 as two`)[0]!.two as number);
      const after = Array.from({ length: 20 }, () => sql`select 3 as three`.execute());
      await expect(transaction).resolves.toBe(2);
      await Promise.all([...pooled, ...after]);
    }
  } finally {
    await sql.end({ timeout: 1 });
  }
});
