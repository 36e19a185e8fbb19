// runs/log-inputs as an attacker uses it: a request holds at most 1,000 inputs of at most 1 MB, but nothing bounded how
// many requests a run took, and a run's inputs are read back whole (runs/get, a search's page of runs, the run page's
// declared datasets): a member could grow one run without end and have every reader's request load it. A run now
// keeps at most 1,000 inputs and 32 MiB of their sources, schemas and profiles; what it has already is not counted
// again; and the GraphQL API, which shows neither schema nor profile, does not read them.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { INPUT_LIMITS } from '../../server/tracking/inputs';
import { startTestApp, type TestApp } from '../harness/app';

let t: TestApp;
let member: string;

async function post(path: string, body: unknown) {
  const res = await fetch(`${t.url}/api/2.0/mlflow/${path}`, {
    method: 'POST',
    headers: { authorization: `Bearer ${member}`, 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  return { status: res.status, body: (await res.json()) as any };
}
const dataset = (name: string, extra: Record<string, string> = {}) => ({
  tags: [],
  dataset: { name, digest: 'd1', source_type: 'local', source: 'file:///data', ...extra },
});
const newRun = async () => (await post('runs/create', { experiment_id: '0' })).body.run.info.run_id as string;

beforeAll(async () => {
  t = await startTestApp();
  member = (await t.user('inputs-member')).token;
}, 60_000);
afterAll(async () => t?.stop());

describe('a run’s inputs', () => {
  it(`are at most ${INPUT_LIMITS.perTask}: one more is refused, one it has already is taken (adding nothing)`, async () => {
    const run = await newRun();
    const full = Array.from({ length: INPUT_LIMITS.perTask }, (_, i) => dataset(`d${i}`));
    expect((await post('runs/log-inputs', { run_id: run, datasets: full })).status).toBe(200);
    const more = await post('runs/log-inputs', { run_id: run, datasets: [dataset('one-more')] });
    expect([more.status, more.body.error_code]).toEqual([400, 'INVALID_PARAMETER_VALUE']);
    expect(more.body.message).toMatch(/at most 1000 inputs/);
    expect((await post('runs/log-inputs', { run_id: run, datasets: [dataset('d7')] })).status).toBe(200);
    const got = await fetch(`${t.url}/api/2.0/mlflow/runs/get?run_id=${run}`, { headers: { authorization: `Bearer ${member}` } });
    expect(((await got.json()) as any).run.inputs.dataset_inputs).toHaveLength(INPUT_LIMITS.perTask);
  }, 60_000);

  it('hold at most 32 MiB of sources, schemas and profiles', async () => {
    const run = await newRun();
    const profile = 'p'.repeat(1_000_000); // under the body's 1 MB with the rest
    let refused: { status: number; body: any } | undefined;
    for (let i = 0; i < 40 && !refused; i++) {
      const r = await post('runs/log-inputs', { run_id: run, datasets: [dataset(`big${i}`, { profile })] });
      if (r.status !== 200) refused = { ...r, body: { ...r.body, at: i } };
    }
    expect(refused?.status).toBe(400);
    expect(refused?.body.message).toMatch(/at most 32 MiB/);
    expect(refused?.body.at).toBe(Math.floor(INPUT_LIMITS.bytesPerTask / 1_000_000 + 0.0001));
  }, 120_000);
});
