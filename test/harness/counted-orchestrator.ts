// An orchestrator of its own on a counting pool (counting-pool.ts): the round trips its transactions take are read
// from `seen` (test/db/run-end-round-trips.test.ts, test/db/start-round-trips.test.ts).
import { drizzle } from 'drizzle-orm/postgres-js';
import type { Db } from '../../server/db/client';
import * as schema from '../../server/db/schema';
import { createRunFeed } from '../../server/events/feed';
import { createOrchestrator, type Orchestrator, type OrchestratorOptions } from '../../server/orchestrator/orchestrator';
import { ClaimReservations } from '../../server/orchestrator/reservations';
import { RunEdges, readPlan } from '../../server/orchestrator/run-edges';
import { countingPool, type WireSeen } from './counting-pool';

export interface CountedOrchestrator {
  orchestrator: Orchestrator;
  seen: WireSeen;
  /** What it knows of the runs' edges: a test awaits its reading of a run it did not start (`learnt`). */
  runEdges: RunEdges;
  /** Its pool (one connection): what Postgres keeps for that connection (pg_prepared_statements) is read through it. */
  sql: ReturnType<typeof countingPool>['sql'];
  end(): Promise<void>;
}

/**
 * `now`: the orchestrator's clock (a test moves it past a cache's freshness); `reservations`, `eventBacklog`: as the
 * orchestrator's options (test/wire/reserved-claims.test.ts); `recordGuesses`: false for one whose recordings always
 * read first (test/db/recording-guesses.test.ts compares the two).
 */
export function countedOrchestrator(
  url: string,
  options: Pick<OrchestratorOptions, 'now' | 'reservations' | 'eventBacklog' | 'recordGuesses'> = {},
): CountedOrchestrator {
  const { sql: client, seen } = countingPool(url);
  const db = drizzle(client, { schema }) as unknown as Db;
  const runEdges = new RunEdges(undefined, readPlan(db));
  const orchestrator = createOrchestrator({
    db,
    runEdges,
    now: options.now,
    // As the app's: small dispatches reserve their claims in their own statement, so the round trips counted are the app's.
    reservations: options.reservations ?? new ClaimReservations(),
    eventBacklog: options.eventBacklog,
    recordGuesses: options.recordGuesses,
    feed: createRunFeed({ db }),
    onOutbox: () => {},
    defaults: { timeoutMs: 60_000, executor: 'local' },
  });
  return { orchestrator, seen, runEdges, sql: client, end: () => client.end({ timeout: 1 }) };
}
