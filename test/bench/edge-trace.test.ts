// S2's edge trace (bench/peers/edge-trace.ts) at a tiny scale: every hop of every edge of a chain is stamped, by the
// control plane and the executor host's process, each naming its task. Counts only: speed is the trace's to print.
import { describe, expect, it } from 'vitest';
import { edgeTrace } from '../../bench/peers/edge-trace';
import { hasServerLibrary } from '../harness/postgres';

const countable = hasServerLibrary('pg_stat_statements');

describe.skipIf(!countable)("S2's edge trace", () => {
  it('stamps every hop of every edge', async () => {
    const { rows, edges } = await edgeTrace(4, false);
    expect(edges).toBe(3);
    expect(rows.filter((r) => r.edges !== 3).map((r) => `${r.hop}: ${r.edges} edges`)).toEqual([]);
  }, 120_000);
});
