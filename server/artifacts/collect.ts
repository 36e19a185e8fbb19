// The object store's collector: deletes objects nothing references (a crash between an object's write and its row,
// results `keepResultFiles` drops, rows retention deletes), which the store would otherwise keep for ever. One replica
// at a time (an advisory lock), every ATELIER_OBJECT_GC_HOURS, a pass:
//   1. lists the store and keeps as candidates (a table, object_gc_candidates: memory stays flat) the objects untouched
//      for the grace period: a put touches the object it stores, so a write about to reference one has made it look recent;
//   2. drops every candidate whose hex appears anywhere in the database: every text, json, jsonb and array column of
//      every table, in any form (`sha256:<hex>`, a bare hex, a key `sha256/ab/<hex>`), so a column added later is
//      covered without a list to keep up to date; a digest mentioned anywhere is kept (an orphan kept is cheap);
//   3. deletes what is left, each object only if still untouched (store.delete checks again: a put racing the pass
//      keeps its object).
// Each pass is logged and written to the audit log (`objects.collect`, counts only), which is also when the last pass
// ran, so replicas restarting more often than the interval still collect. A crash mid-pass deletes nothing referenced:
// only step 3 deletes, object by object, each one unreferenced and untouched.
import { and, asc, desc, eq, getTableName, gt, sql } from 'drizzle-orm';
import { audit } from '../audit/audit';
import { type Db, queryRows, withTryAdvisoryLock } from '../db/client';
import { auditEvents } from '../db/tables/governance';
import { objectGcCandidates } from '../db/tables/object-stores';
import type { Service } from '../lifecycle';
import type { ObjectStore } from './store';

// Any fixed number ("objg"): one collector at a time across replicas.
const COLLECT_LOCK = 0x6f626767;
const PAGE = 1000;
const ACTION = 'objects.collect';
const SUBJECT = 'object-store';

export interface CollectPass {
  /** Objects listed. */
  seen: number;
  /** Untouched for the grace period and referenced nowhere. */
  unreferenced: number;
  deleted: number;
  bytesFreed: number;
}

export interface CollectOptions {
  db: Db;
  store: ObjectStore;
  /** Objects touched more recently than this are kept whatever references them. */
  graceMs: number;
  now?: () => Date;
}

/**
 * Every text-like column of every table on the search path (Atelier's; another schema's may not be readable to it), but
 * the candidates' own: every candidate mentions itself there.
 */
async function textColumns(db: Db) {
  return queryRows<{ schema: string; table: string; column: string }>(
    db,
    sql`select c.table_schema as schema, c.table_name as table, c.column_name as column
        from information_schema.columns c
        join information_schema.tables t on t.table_schema = c.table_schema and t.table_name = c.table_name
        where t.table_type = 'BASE TABLE' and c.table_schema = any(current_schemas(false))
          and c.data_type in ('text', 'character varying', 'character', 'json', 'jsonb', 'ARRAY')
          and c.table_name <> ${getTableName(objectGcCandidates)}
        order by 1, 2, 3`,
  );
}

/**
 * One pass (no lock: `objectCollector` takes it). Resolves with what it saw and did. Every statement commits on its own:
 * a pass once held one transaction from the listing to the last delete, which on Postgres held back vacuum of every
 * table for as long as the pass took (its transaction id was the oldest running). Nothing needs the pass to be one
 * snapshot: each statement sees what has committed, and a write about to reference an object has touched it.
 */
export async function collectObjects(options: CollectOptions): Promise<CollectPass> {
  const { db, store } = options;
  const untouchedBefore = new Date((options.now?.() ?? new Date()).getTime() - options.graceMs);
  const pass: CollectPass = { seen: 0, unreferenced: 0, deleted: 0, bytesFreed: 0 };
  const columns = await textColumns(db);
  await db.delete(objectGcCandidates); // what a pass killed midway left
  let page: { hex: string; size: number }[] = [];
  const flush = async () => {
    if (!page.length) return;
    await db.insert(objectGcCandidates).values(page).onConflictDoNothing();
    page = [];
  };
  for await (const object of store.list()) {
    pass.seen++;
    if (object.touchedAt >= untouchedBefore) continue;
    page.push({ hex: object.digest.slice('sha256:'.length), size: object.size });
    if (page.length >= PAGE) await flush();
  }
  await flush();

  for (const { schema, table, column } of columns) {
    const [left] = await queryRows<{ n: number }>(db, sql`select count(*)::int as n from ${objectGcCandidates}`);
    if (!left?.n) break;
    const name = sql`${sql.identifier(schema)}.${sql.identifier(table)}`;
    const value = sql.identifier(column);
    await db.execute(
      sql`delete from ${objectGcCandidates} where hex in (
            select (regexp_matches(lower(${value}::text), '[0-9a-f]{64}', 'g'))[1] from ${name} where ${value} is not null)`,
    );
  }

  let after = '';
  for (;;) {
    const rows = await db.select().from(objectGcCandidates).where(gt(objectGcCandidates.hex, after)).orderBy(asc(objectGcCandidates.hex)).limit(PAGE);
    if (!rows.length) break;
    for (const { hex } of rows) {
      pass.unreferenced++;
      const freed = await store.delete(`sha256:${hex}`, untouchedBefore);
      if (freed === null) continue;
      pass.deleted++;
      pass.bytesFreed += freed;
    }
    after = rows[rows.length - 1]!.hex;
  }
  await db.delete(objectGcCandidates);
  return pass;
}

/** When the last pass recorded itself (null: never). */
export async function lastCollection(db: Db): Promise<Date | null> {
  const [row] = await db
    .select({ at: auditEvents.at })
    .from(auditEvents)
    .where(and(eq(auditEvents.subject, SUBJECT), eq(auditEvents.action, ACTION)))
    .orderBy(desc(auditEvents.at))
    .limit(1);
  return row ? new Date(row.at) : null;
}

/** A pass, logged and audited. */
export async function collectAndRecord(options: CollectOptions & { log: (message: string) => void }): Promise<CollectPass> {
  const started = Date.now();
  const pass = await collectObjects(options);
  const graceHours = options.graceMs / 3_600_000;
  options.log(
    `object store collector: ${pass.seen} object(s) seen, ${pass.unreferenced} unreferenced and untouched for ${graceHours} h, ` +
      `${pass.deleted} deleted (${pass.bytesFreed} bytes freed) in ${Date.now() - started} ms`,
  );
  await audit(options.db, {
    identity: null,
    action: ACTION,
    decision: 'allow',
    subject: SUBJECT,
    rule: `objects referenced by no row and untouched for ${graceHours} h are deleted`,
    details: { backend: options.store.backend, ...pass, graceHours, ms: Date.now() - started },
  });
  return pass;
}

export interface CollectorOptions extends CollectOptions {
  /** Between passes (0: never). */
  everyMs: number;
  /** Postgres: an advisory lock keeps one collector at a time; PGlite has one process. */
  leaderLock: boolean;
  log: (message: string) => void;
  /** How often a replica checks whether a pass is due. */
  checkEveryMs?: number;
}

/** The collector as a service: checks hourly (and a minute after start) whether the last recorded pass is `everyMs` old. */
export function objectCollector(options: CollectorOptions): Service {
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<void> | undefined;
  const due = async () => {
    const last = await lastCollection(options.db);
    if (last && Date.now() - last.getTime() < options.everyMs) return;
    await collectAndRecord(options);
  };
  const check = () => {
    running ??= (options.leaderLock ? withTryAdvisoryLock(options.db, COLLECT_LOCK, due).then(() => {}) : due())
      .catch((error: unknown) => options.log(`object store collector: ${(error as Error).message} (will retry)`))
      .finally(() => (running = undefined));
  };
  return {
    name: 'object store collector',
    start() {
      if (options.everyMs <= 0) return;
      const every = options.checkEveryMs ?? Math.min(options.everyMs, 3_600_000);
      timer = setTimeout(
        function again() {
          check();
          timer = setTimeout(again, every);
          timer.unref();
        },
        Math.min(every, 60_000),
      );
      timer.unref();
    },
    async stop() {
      clearTimeout(timer);
      await running;
    },
  };
}
