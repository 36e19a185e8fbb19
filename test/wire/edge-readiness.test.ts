// The counting update makes a task READY in SQL (rules.ts readyWhen) while the skip decision stays in TypeScript
// (readinessFromCounts): both must say `ready` for exactly the same counts, for every trigger rule.
import { PGlite } from '@electric-sql/pglite';
import { sql } from 'drizzle-orm';
import { drizzle } from 'drizzle-orm/pglite';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readinessFromCounts, readyWhen } from '../../server/orchestrator/rules';
import { triggerRules } from '../../server/vocabulary';

describe('readyWhen', () => {
  let client: PGlite;
  beforeAll(async () => {
    client = new PGlite();
  });
  afterAll(async () => {
    await client.close();
  });

  it('agrees with readinessFromCounts on every rule and every count up to 4 upstreams', async () => {
    const cases: { rule: string; total: number; done: number; succeeded: number; failed: number }[] = [];
    for (const rule of triggerRules)
      for (let total = 0; total <= 4; total++)
        for (let done = 0; done <= total; done++)
          for (let succeeded = 0; succeeded <= done; succeeded++)
            for (let failed = 0; succeeded + failed <= done; failed++) cases.push({ rule, total, done, succeeded, failed });
    const db = drizzle(client);
    const condition = readyWhen({ rule: sql`v.rule`, total: sql`v.total`, done: sql`v.done`, succeeded: sql`v.succeeded`, failed: sql`v.failed` });
    const result = await db.execute(sql`
      select v.i, ${condition} as ready
      from json_to_recordset(${JSON.stringify(cases.map((c, i) => ({ i, ...c })))}::json) as v(i int, rule text, total int, done int, succeeded int, failed int)
      order by v.i`);
    const rows = result.rows as { i: number; ready: boolean }[];
    expect(rows).toHaveLength(cases.length);
    const disagreements = cases.filter((c, i) => rows[i]!.ready !== (readinessFromCounts(c.rule as (typeof triggerRules)[number], c) === 'ready'));
    expect(disagreements).toEqual([]);
  });
});
