// Model registry benchmark on real Postgres: the lineage of a version whose run read 50 datasets (10 columns each)
// through a 1,000-task DAG (each task depends on the one before it and on the one at half its index; the first 50
// read one dataset each, the last produced the model). Running 1,000 real tasks would take minutes on these
// machines, so the run, its tasks (with their data access, as the gates record it) and the datasets are inserted in
// SQL; the version is registered through the API (which walks the DAG once), then `modelVersion { label lineage }`
// is timed. The floor, from the same run: `modelVersion { id version }` (same HTTP, GraphQL and authorization path).
// Registering a big version: a task of its own run logged 100 files of 512 KiB (50 MiB) as artifacts under `model/`
// (stored once, not timed); `registerModelVersion(output: "model")` is timed for new models (a new version each) and
// again for one already registered (unchanged content). "Uploads nothing" is measured, not assumed: the server's
// object store is wrapped to count every put/putStream call and its bytes during the registrations.
import { randomBytes } from 'node:crypto';
import postgres from 'postgres';
import type { ObjectStore } from '../server/artifacts/store';
import { lineageOf } from '../server/registry/lineage';
import { findModelVersion } from '../server/registry/models';
import { startTestApp } from '../test/harness/app';
import type { Infra } from './foundation';
import { p50, type Row } from './lib';

const TASKS = 1000;
const DATASETS = 50;
const COLUMNS = Array.from({ length: 10 }, (_, i) => `c${i}`);
const SAMPLES = 30;

/** Inserts the datasets, the run and its 1,000 tasks; returns the id of the task that produced the model. */
async function seed(url: string): Promise<string> {
  const sql = postgres(url, { max: 2, onnotice: () => {} });
  try {
    const digest = `sha256:${'d'.repeat(64)}`;
    const columns = COLUMNS.map((name) => ({ name, type: 'double' }));
    const datasets = await sql`
      insert into datasets (namespace, name, domain) select 'bench', 'ds-' || i, 'experimentation' from generate_series(1, ${DATASETS}) i returning id, name`;
    await sql`insert into dataset_versions (dataset_id, version, columns, digest) select id, 1, ${sql.json(columns)}, ${digest} from datasets where namespace = 'bench'`;
    await sql`
      insert into column_labels (dataset_id, "column", level, categories)
      select d.id, c, case when c = 'c0' then 'CONFIDENTIAL' else 'INTERNAL' end, '{}'::text[] from datasets d cross join unnest(${COLUMNS}::text[]) c where d.namespace = 'bench'`;
    const [experiment] = await sql`insert into experiments (name) values (${`bench-registry-${Date.now()}`}) returning id`;
    const [run] = await sql`
      insert into runs (experiment_id, status, trigger, domain, parameters) values (${experiment!.id}, 'SUCCEEDED', 'EXTERNAL', 'experimentation', ${sql.json({ lr: 0.01 })}) returning id`;
    const rows = Array.from({ length: TASKS }, (_, i) => {
      const ds = datasets[i];
      const access =
        i < DATASETS && ds ? { inputs: { data: { dataset: `bench/${ds.name}`, version: 1, digest, columns: COLUMNS, labels: {} } }, outputs: {} } : null;
      return {
        run_id: run!.id,
        node: `t${i}`,
        kind: 'module',
        status: 'SUCCEEDED',
        depends_on: i === 0 ? [] : [...new Set([`t${i - 1}`, `t${Math.floor(i / 2)}`])],
        data_access: access,
        outputs: i === TASKS - 1 ? { model: { weights: Array.from({ length: 100 }, (_, k) => k) } } : { out: i },
        cache_key: `sha256:${String(i).padStart(64, '0')}`,
        timeout_ms: 60_000,
        pool: 'default',
        executor: 'local',
      };
    });
    const inserted = await sql`
      insert into tasks ${sql(rows as never, 'run_id', 'node', 'kind', 'status', 'depends_on', 'data_access', 'outputs', 'cache_key', 'timeout_ms', 'pool', 'executor')}
      returning id, node`;
    const last = inserted.find((r) => r.node === `t${TASKS - 1}`)!;
    await sql`
      insert into metric_summaries (task_id, run_id, name, count, last, last_step, last_at, last_attempt, last_seq)
      select ${last.id}, ${run!.id}, m, 1, 0.9, 0, now(), 1, 1 from unnest(${['accuracy', 'loss', 'f1', 'auc', 'precision']}::text[]) m`;
    await sql`analyze tasks`;
    return last.id as string;
  } finally {
    await sql.end();
  }
}

const FILES = 100;
const FILE_BYTES = 512 * 1024;

/** A run with one succeeded task that logged FILES artifacts of FILE_BYTES under `model/`; returns the task's id. */
async function seedArtifacts(url: string, store: ObjectStore): Promise<string> {
  const sql = postgres(url, { max: 2, onnotice: () => {} });
  try {
    const [experiment] = await sql`insert into experiments (name) values (${`bench-registry-big-${Date.now()}`}) returning id`;
    const [run] = await sql`
      insert into runs (experiment_id, status, trigger, domain) values (${experiment!.id}, 'SUCCEEDED', 'EXTERNAL', 'experimentation') returning id`;
    const [task] = await sql`
      insert into tasks (run_id, node, kind, status, depends_on, timeout_ms, pool, executor)
      values (${run!.id}, 'big', 'external', 'SUCCEEDED', '{}', 60000, 'default', 'local') returning id`;
    const rows = [];
    for (let i = 0; i < FILES; i++) {
      const bytes = randomBytes(FILE_BYTES);
      rows.push({
        task_id: task!.id,
        run_id: run!.id,
        path: `model/part-${String(i).padStart(3, '0')}.bin`,
        digest: await store.put(bytes),
        size: bytes.length,
      });
    }
    await sql`insert into run_artifacts ${sql(rows, 'task_id', 'run_id', 'path', 'digest', 'size')}`;
    return task!.id as string;
  } finally {
    await sql.end();
  }
}

/** Counts what goes into the store from now on (the wrapped object is the one the API uses). */
function countWrites(store: ObjectStore) {
  const counted = { calls: 0, bytes: 0 };
  const put = store.put.bind(store);
  const putStream = store.putStream.bind(store);
  Object.assign(store, {
    put: (bytes: Uint8Array) => {
      counted.calls++;
      counted.bytes += bytes.length;
      return put(bytes);
    },
    putStream: (source: Parameters<ObjectStore['putStream']>[0]) => {
      counted.calls++;
      return putStream(source);
    },
  });
  return counted;
}

export async function registryBench(infra: Infra): Promise<Row[]> {
  const t = await startTestApp({ DATABASE_URL: infra.pgUrl, NATS_URL: infra.natsUrl });
  try {
    const taskId = await seed(infra.pgUrl);
    const check = async (query: string, variables: Record<string, unknown> = {}) => {
      const result = await t.api.raw(query, variables);
      if (result.errors) throw new Error(JSON.stringify(result.errors));
      return result.data;
    };
    const start = performance.now();
    const registered = await check(
      `mutation ($t: ID!) { registerModelVersion(model: "bench/model", taskId: $t, output: "model") { created version { ref } } }`,
      {
        t: taskId,
      },
    );
    const register = performance.now() - start;
    const LINEAGE = `{ modelVersion(ref: "bench/model@1") { label { level } lineage { run { id } task { node } moduleVersions { id }
      datasets { name version digest columns { name label { level categories } } } parameters metrics { name value } cacheKey } } }`;
    const lineage = await check(LINEAGE);
    const datasets = lineage.modelVersion.lineage.datasets.length;
    if (!registered.registerModelVersion.created || datasets !== DATASETS) throw new Error(`lineage found ${datasets} datasets, expected ${DATASETS}`);
    const floor = await p50(() => check(`{ modelVersion(ref: "bench/model@1") { id version } }`), SAMPLES);
    const timed = await p50(() => check(LINEAGE), SAMPLES);
    const { version } = await findModelVersion(t.app.services.db, 'bench/model@1');
    const service = await p50(() => lineageOf(t.app.services.db, version), SAMPLES);

    const bigTask = await seedArtifacts(infra.pgUrl, t.app.services.store);
    const writes = countWrites(t.app.services.store);
    const REGISTER_BIG = `mutation ($m: String!, $t: ID!) { registerModelVersion(model: $m, taskId: $t, output: "model") { created version { files { path } } } }`;
    let n = 0;
    const registerNew = await p50(async () => {
      const r = await check(REGISTER_BIG, { m: `bench/big-${n++}`, t: bigTask });
      if (!r.registerModelVersion.created || r.registerModelVersion.version.files.length !== FILES) throw new Error('expected a new version of 100 files');
    }, SAMPLES);
    const newWrites = { ...writes };
    writes.calls = 0;
    writes.bytes = 0;
    const registerAgain = await p50(async () => {
      const r = await check(REGISTER_BIG, { m: 'bench/big-0', t: bigTask });
      if (r.registerModelVersion.created) throw new Error('unchanged content registered a new version');
    }, SAMPLES);
    const againWrites = { ...writes };
    const mb = (FILES * FILE_BYTES) / 2 ** 20;
    return [
      { bench: 'registry', metric: 'modelVersion { id version } p50 (floor)', value: floor, unit: 'ms' },
      {
        bench: 'registry',
        metric: `lineage of a version: ${DATASETS} datasets × ${COLUMNS.length} columns through a ${TASKS}-task DAG, p50`,
        value: timed,
        unit: 'ms',
        floor,
        ratio: timed / floor,
        note: 'aim ≤ 50 ms',
      },
      { bench: 'registry', metric: 'the same lineage read in the service (no HTTP, GraphQL), p50', value: service, unit: 'ms', floor, ratio: service / floor },
      { bench: 'registry', metric: `registerModelVersion walking the ${TASKS}-task DAG (once)`, value: register, unit: 'ms', floor, ratio: register / floor },
      {
        bench: 'registry',
        metric: `register a version of ${FILES} files / ${mb} MiB logged as task artifacts, p50`,
        value: registerNew,
        unit: 'ms',
        floor,
        ratio: registerNew / floor,
        note: `aim ≤ 1000 ms; object store writes during ${n} registrations: ${newWrites.calls} calls, ${newWrites.bytes} bytes`,
      },
      {
        bench: 'registry',
        metric: 'register the same version again (unchanged content), p50',
        value: registerAgain,
        unit: 'ms',
        floor,
        ratio: registerAgain / floor,
        note: `object store writes during ${SAMPLES + 3} re-registrations: ${againWrites.calls} calls, ${againWrites.bytes} bytes (must be 0)`,
      },
    ];
  } finally {
    await t.stop();
  }
}
