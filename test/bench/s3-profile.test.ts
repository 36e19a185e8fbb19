// S3's hop profile (bench/peers/s3-profile.ts) at a tiny scale: every hop of every run is stamped, by the control
// plane, the executor host's process and the bench's client, and a one-task run's transactions ask no open-task
// question of their own (startRun's dispatch queued a task; the recording's counting statement answers it). Counts
// only: speed is the profile's to print.
import { describe, expect, it } from 'vitest';
import { s3Profile } from '../../bench/peers/s3-profile';
import { hasServerLibrary } from '../harness/postgres';

const countable = hasServerLibrary('pg_stat_statements');

describe.skipIf(!countable)("S3's hop profile", () => {
  it('stamps every hop of every run, and a one-task run sends no open-task check', async () => {
    const { rows, statements } = await s3Profile(3, false);
    expect(rows.filter((r) => r.runs !== 3).map((r) => `${r.hop}: ${r.runs} runs`)).toEqual([]);
    const openChecks = statements.filter((s) => /^with o as \(select exists/.test(s.query.trim()));
    expect(openChecks).toEqual([]);
  }, 120_000);
});
