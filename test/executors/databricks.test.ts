// The `databricks` executor against the loopback stand-in (test/stand-ins/databricks.ts): the executor contract
// through the real host, then focused cases driven directly with an injected clock, so backoffs, Retry-After and
// token lifetimes cost no real time.
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { parseRetryAfter } from '../../executors/databricks/http';
import {
  createDatabricksExecutor,
  type DatabricksExecutorOptions,
  type DatabricksHandle,
  idempotencyTokenFor,
  readRunState,
} from '../../executors/databricks/index';
import { digestDirName } from '../../executors/databricks/upload';
import type { Executor, TaskContext, TaskMessage, TaskOutcome } from '../../plugins/sdk';
import { type ContractScenario, executorContract } from '../../plugins/testkit';
import { buildModule, createScratch, makeTask } from '../plugins/host-harness';
import { createDatabricksStandIn, type DatabricksStandIn, type RunScript, runState } from '../stand-ins/databricks';

const TOKEN = 'dapi-standin-token';
const STAGING = '/Volumes/main/atelier/modules';
const DEFAULT_CLUSTER = { spark_version: '15.4.x-scala2.12', node_type_id: 'i3.xlarge', num_workers: 1 };

const contractScripts: Record<ContractScenario, RunScript> = {
  succeed: {
    states: [runState.queued(), runState.pending(), runState.running(), runState.running(), runState.succeeded()],
    output: { logs: 'hello from databricks\n::atelier:: {"output": {"name": "answer", "value": 42}}\n' },
  },
  'fail-permanent': {
    states: [runState.pending(), runState.running(), runState.failed()],
    output: { error: 'ZeroDivisionError: division by zero', error_trace: 'Traceback (most recent call last):\n  File "main.py", line 1' },
  },
  'fail-retryable': { states: [runState.pending(), runState.clusterFailed()] },
  'run-long': { states: [runState.pending(), runState.running()], cancelPolls: 3 },
};

executorContract('databricks', async () => {
  const standIn = await createDatabricksStandIn();
  for (const [name, script] of Object.entries(contractScripts)) standIn.script(name, script);
  const scratch = createScratch();
  const { archive, digest } = await buildModule(scratch.root, 'contract', { 'main.py': 'print("hello from databricks")\n' });
  // A restarted host builds its executor afresh: nothing in memory survives, only the idempotency token.
  const make = () =>
    createDatabricksExecutor({
      host: standIn.url,
      auth: { token: TOKEN },
      stagingDir: STAGING,
      defaultCluster: DEFAULT_CLUSTER,
      pollIntervalMs: 25,
      requestTimeoutMs: 2_000,
      retry: { baseDelayMs: 20 },
    });
  return {
    executor: make(),
    restartedExecutor: make,
    artifacts: { [digest]: archive },
    scenario: (kind) => ({ module: { digest, entrypoint: 'main.py', runtime: 'python3' }, parameters: { standin: kind } }),
    submissions: () => standIn.runsCreated(),
    reattach: 'adopt',
    cleanup: async () => {
      await standIn.close();
      scratch.remove();
    },
  };
});

/** Virtual time: every sleep returns at once and moves the clock; `sleeps` records what was asked. */
function createVirtualClock() {
  let now = Date.now();
  const sleeps: number[] = [];
  return {
    sleeps,
    now: () => now,
    advance: (ms: number) => void (now += ms),
    async sleep(ms: number) {
      sleeps.push(ms);
      now += ms;
      await new Promise((resolve) => setImmediate(resolve));
    },
  };
}

interface Recorded {
  logs: { stream: string; line: string }[];
  progressMessages: (string | null)[];
  outputs: Record<string, unknown>;
  metrics: Record<string, number>[];
  controller: AbortController;
}

let standIn: DatabricksStandIn;
let scratch: ReturnType<typeof createScratch>;
let clock: ReturnType<typeof createVirtualClock>;
let module: { archive: string; digest: string };
let wheelModule: { archive: string; digest: string };

beforeEach(async () => {
  standIn = await createDatabricksStandIn({ oauthClient: { clientId: 'sp-client', clientSecret: 'sp-secret', expiresInSeconds: 3_600 } });
  scratch = createScratch();
  clock = createVirtualClock();
  module = await buildModule(scratch.root, 'dbx', { 'main.py': 'print("hi")\n', 'lib/util.py': 'X = 1\n' });
  wheelModule = await buildModule(scratch.root, 'wheel', { 'dist/trainer-1.0-py3-none-any.whl': 'not really a wheel' });
});
afterEach(async () => {
  await standIn.close();
  scratch.remove();
});

function executorFor(overrides: Partial<DatabricksExecutorOptions> = {}) {
  return createDatabricksExecutor({
    host: standIn.url,
    auth: { token: TOKEN },
    stagingDir: STAGING,
    defaultCluster: DEFAULT_CLUSTER,
    pollIntervalMs: 10_000,
    clock,
    random: () => 0.5,
    requestTimeoutMs: 2_000,
    ...overrides,
  });
}

function taskWith(script: RunScript | string, overrides: Partial<TaskMessage> = {}, target = module): TaskMessage {
  return makeTask({
    executor: 'databricks',
    module: { digest: target.digest, entrypoint: 'main.py', runtime: 'python3' },
    parameters: { standin: script, lr: 0.1 },
    ...overrides,
  });
}

function contextFor(task: TaskMessage): TaskContext & Recorded {
  const recorded: Recorded = { logs: [], progressMessages: [], outputs: {}, metrics: [], controller: new AbortController() };
  const archives: Record<string, string> = { [module.digest]: module.archive, [wheelModule.digest]: wheelModule.archive };
  return {
    ...recorded,
    signal: recorded.controller.signal,
    get aborted() {
      return recorded.controller.signal.aborted;
    },
    workdir: path.join(scratch.root, 'work', task.taskId),
    host: 'test-host',
    artifactPath: async () => archives[task.module.digest]!,
    log: (stream, line) => void recorded.logs.push({ stream, line }),
    progress: (_fraction, message) => void recorded.progressMessages.push(message ?? null),
    output: (name, value) => void (recorded.outputs[name] = value),
    metric: (metrics) => void recorded.metrics.push(metrics),
  };
}

/** submit → wait → finalize, as the host drives them. */
async function runTask(executor: Executor<DatabricksHandle>, task: TaskMessage) {
  const ctx = contextFor(task);
  const handle = await executor.submit(task, ctx);
  const outcome = await executor.wait(handle, task, ctx);
  await executor.finalize?.(handle, task, outcome);
  return { handle, outcome, ctx, lines: ctx.logs.map((l) => l.line) };
}

const submitRequests = () => standIn.requestsTo('/api/2.2/jobs/runs/submit', 'POST');
const submittedBody = (i = 0) => submitRequests()[i]!.body as Record<string, any>;

const succeed: RunScript = {
  states: [runState.pending(), runState.running(), runState.succeeded()],
  output: {
    logs:
      'hello from databricks\n::atelier:: {"output": {"name": "answer", "value": 42}, "metrics": {"loss": 0.5}}\n' +
      // A helper's batch of points, NaN spelled as a string, as the local executor's fd 3 carries them.
      '::atelier:: {"points": [{"name": "loss", "value": 0.25, "step": 1}, {"name": "loss", "value": "NaN", "step": 2}]}',
  },
  setupDurationMs: 95_000,
};

describe('databricks run states', () => {
  const status = (state: string, code?: string, type?: string, message = '') =>
    code || type ? { status: { state, termination_details: { code, type, message } } } : { status: { state } };
  const legacy = (life: string, result?: string, message = '') => ({ state: { life_cycle_state: life, result_state: result, state_message: message } });
  const table: [string, unknown, string, Partial<TaskOutcome> | undefined][] = [
    ['status QUEUED', status('QUEUED'), 'queued', undefined],
    ['status BLOCKED', status('BLOCKED'), 'queued', undefined],
    ['status WAITING', status('WAITING'), 'queued', undefined],
    ['status PENDING', status('PENDING'), 'provisioning', undefined],
    ['status RUNNING', status('RUNNING'), 'running', undefined],
    ['status TERMINATING', status('TERMINATING'), 'terminating', undefined],
    ['SUCCESS', status('TERMINATED', 'SUCCESS', 'SUCCESS'), 'terminated', { state: 'SUCCEEDED' }],
    ['USER_CANCELED', status('TERMINATED', 'USER_CANCELED', 'SUCCESS'), 'terminated', { state: 'CANCELLED' }],
    ['CANCELED', status('TERMINATED', 'CANCELED', 'SUCCESS', 'Canceled by the platform'), 'terminated', { state: 'CANCELLED' }],
    ['CANCELED at the timeout', status('TERMINATED', 'CANCELED', 'CLIENT_ERROR', 'Run timed out after 60 seconds'), 'terminated', { state: 'TIMED_OUT' }],
    [
      'CANCELED + legacy TIMEDOUT',
      { ...status('TERMINATED', 'CANCELED', 'CLIENT_ERROR'), ...legacy('TERMINATED', 'TIMEDOUT') },
      'terminated',
      { state: 'TIMED_OUT' },
    ],
    ['RUN_EXECUTION_ERROR (user code)', status('TERMINATED', 'RUN_EXECUTION_ERROR', 'CLIENT_ERROR'), 'terminated', { state: 'FAILED', retryable: undefined }],
    ['CLUSTER_ERROR', status('TERMINATED', 'CLUSTER_ERROR', 'CLOUD_FAILURE'), 'terminated', { state: 'FAILED', retryable: true, systemFailure: true }],
    ['CLOUD_FAILURE', status('TERMINATED', 'CLOUD_FAILURE', 'CLOUD_FAILURE'), 'terminated', { state: 'FAILED', retryable: true, systemFailure: true }],
    ['INTERNAL_ERROR', status('TERMINATED', 'INTERNAL_ERROR', 'INTERNAL_ERROR'), 'terminated', { state: 'FAILED', retryable: true, systemFailure: true }],
    ['DRIVER_ERROR', status('TERMINATED', 'DRIVER_ERROR', 'INTERNAL_ERROR'), 'terminated', { state: 'FAILED', retryable: true, systemFailure: true }],
    ['MAX_CONCURRENT_RUNS_EXCEEDED', status('TERMINATED', 'MAX_CONCURRENT_RUNS_EXCEEDED', 'CLIENT_ERROR'), 'terminated', { state: 'FAILED', retryable: true }],
    ['INVALID_CLUSTER_REQUEST', status('TERMINATED', 'INVALID_CLUSTER_REQUEST', 'CLIENT_ERROR'), 'terminated', { state: 'FAILED', retryable: false }],
    ['LIBRARY_INSTALLATION_ERROR', status('TERMINATED', 'LIBRARY_INSTALLATION_ERROR', 'CLIENT_ERROR'), 'terminated', { state: 'FAILED', retryable: false }],
    ['SKIPPED', status('TERMINATED', 'SKIPPED', 'SUCCESS'), 'terminated', { state: 'FAILED', reason: 'skipped' }],
    ['a new code, CLIENT_ERROR type', status('TERMINATED', 'SOMETHING_NEW', 'CLIENT_ERROR'), 'terminated', { state: 'FAILED', retryable: false }],
    ['a new code, CLOUD_FAILURE type', status('TERMINATED', 'SOMETHING_NEW', 'CLOUD_FAILURE'), 'terminated', { state: 'FAILED', retryable: true }],
    ['a new status state', status('HIBERNATING'), 'unknown', undefined],
    ['status wins over legacy', { ...status('RUNNING'), ...legacy('TERMINATED', 'SUCCESS') }, 'running', undefined],
    ['legacy PENDING', legacy('PENDING'), 'provisioning', undefined],
    ['legacy WAITING_FOR_RETRY', legacy('WAITING_FOR_RETRY'), 'queued', undefined],
    ['legacy SUCCESS', legacy('TERMINATED', 'SUCCESS'), 'terminated', { state: 'SUCCEEDED' }],
    ['legacy FAILED', legacy('TERMINATED', 'FAILED'), 'terminated', { state: 'FAILED', retryable: undefined }],
    ['legacy TIMEDOUT', legacy('TERMINATED', 'TIMEDOUT'), 'terminated', { state: 'TIMED_OUT' }],
    ['legacy CANCELED', legacy('TERMINATED', 'CANCELED'), 'terminated', { state: 'CANCELLED' }],
    [
      'legacy INTERNAL_ERROR (cluster launch)',
      legacy('INTERNAL_ERROR', 'FAILED', 'Unexpected failure while waiting for the cluster'),
      'terminated',
      { state: 'FAILED', retryable: true, systemFailure: true },
    ],
    ['legacy SKIPPED', legacy('SKIPPED'), 'terminated', { state: 'FAILED', reason: 'skipped' }],
    ['legacy UPSTREAM_FAILED', legacy('TERMINATED', 'UPSTREAM_FAILED'), 'terminated', { state: 'FAILED', reason: 'skipped' }],
    ['legacy unknown life cycle', legacy('DREAMING'), 'unknown', undefined],
    ['no state at all', {}, 'unknown', undefined],
  ];

  it.each(table)('%s', (_name, run, phase, outcome) => {
    const view = readRunState(run);
    expect(view.phase).toBe(phase);
    if (!outcome) return expect(view.outcome).toBeUndefined();
    // `retryable: undefined` in the table means the key must be absent: the task's retry policy decides.
    const present = Object.fromEntries(Object.entries(outcome).filter(([, v]) => v !== undefined));
    expect(view.outcome).toMatchObject(present);
    for (const [key, value] of Object.entries(outcome)) if (value === undefined) expect(view.outcome).not.toHaveProperty(key);
  });

  it('reads Retry-After as seconds or an HTTP date', () => {
    expect(parseRetryAfter('7', 0)).toBe(7_000);
    expect(parseRetryAfter(new Date(60_000).toUTCString(), 0)).toBe(60_000);
    expect(parseRetryAfter('soon', 0)).toBeUndefined();
    expect(parseRetryAfter(null, 0)).toBeUndefined();
  });
});

describe('databricks executor', () => {
  it('uploads the module, submits one run with the documented body, and follows it to SUCCEEDED', async () => {
    const task = taskWith(succeed, { timeoutMs: 90_500 });
    const { handle, outcome, ctx, lines } = await runTask(executorFor(), task);
    expect(outcome).toEqual({ state: 'SUCCEEDED', provisioningMs: 95_000 });
    expect(handle).toEqual({ runId: expect.any(Number), cluster: 'new' });

    const dir = `${STAGING}/${digestDirName(module.digest)}`;
    expect([...standIn.files.keys()].sort()).toEqual([`${dir}/lib/util.py`, `${dir}/main.py`]);
    const body = submittedBody();
    expect(body.idempotency_token).toBe(idempotencyTokenFor(task));
    expect(body.idempotency_token.length).toBeLessThanOrEqual(64);
    expect(body.run_name).toContain(task.node);
    expect(body.timeout_seconds).toBe(91);
    expect(body.tasks).toHaveLength(1);
    const [spec] = body.tasks;
    expect(spec.new_cluster).toEqual(DEFAULT_CLUSTER);
    expect(spec.spark_python_task.python_file).toBe(`${dir}/main.py`);
    const params: string[] = spec.spark_python_task.parameters;
    expect(JSON.parse(params[params.indexOf('--atelier-params') + 1]!)).toEqual(task.parameters);
    expect(params.slice(0, 2)).toEqual(['--atelier-task-id', task.taskId]);
    expect(standIn.requests.every((r) => r.authorization === `Bearer ${TOKEN}`)).toBe(true);

    // get-output is asked of the task run: Databricks refuses the parent id of a multi-task run.
    const outputRequests = standIn.requestsTo('/api/2.2/jobs/runs/get-output');
    expect(outputRequests.map((r) => Number(r.query.run_id))).toEqual([standIn.run(handle.runId!)!.taskRunId]);
    expect(lines).toContain('hello from databricks');
    expect(ctx.outputs.answer).toBe(42);
    expect(ctx.outputs.databricks).toMatchObject({ runId: handle.runId, cluster: 'new', coldStart: true, provisioningMs: 95_000 });
    expect(ctx.metrics).toContainEqual({ loss: 0.5 });
    expect(ctx.metrics).toContainEqual({ loss: 0.25 });
    expect(ctx.metrics.some((m) => Number.isNaN(m.loss))).toBe(true);
    expect(ctx.metrics).toContainEqual(expect.objectContaining({ provisioning_ms: 95_000 }));
    expect(ctx.progressMessages).toEqual(['provisioning', 'running']);
    expect(lines.filter((l) => l.includes('is PENDING'))).toHaveLength(1);

    // One upload per module version per executor (a fresh one uploads again: content-addressed, so harmless).
    const puts = () => standIn.requests.filter((r) => r.method === 'PUT').length;
    const executor = executorFor();
    await runTask(executor, taskWith(succeed));
    const afterFirst = puts();
    await runTask(executor, taskWith(succeed));
    expect(puts()).toBe(afterFirst);
  });

  it('runs on an instance pool, on an existing (hot) cluster, and runs wheels', async () => {
    const executor = executorFor({ existingClusterIds: ['0923-164208-meows279'] });
    const pool = await runTask(executor, taskWith(succeed, { settings: { databricks: { instance_pool_id: 'pool-123', new_cluster: { num_workers: 4 } } } }));
    expect(pool.outcome.state).toBe('SUCCEEDED');
    expect(submittedBody(0).tasks[0].new_cluster).toEqual({ spark_version: '15.4.x-scala2.12', num_workers: 4, instance_pool_id: 'pool-123' });
    expect(pool.ctx.outputs.databricks).toMatchObject({ cluster: 'pool', coldStart: true });

    const hot = await runTask(
      executor,
      taskWith({ ...succeed, setupDurationMs: 0 }, { settings: { databricks: { existing_cluster_id: '0923-164208-meows279' } } }),
    );
    expect(hot.outcome.state).toBe('SUCCEEDED');
    const hotSpec = submittedBody(1).tasks[0];
    expect(hotSpec.existing_cluster_id).toBe('0923-164208-meows279');
    expect(hotSpec.new_cluster).toBeUndefined();
    expect(hot.ctx.outputs.databricks).toMatchObject({ cluster: 'existing', coldStart: false, provisioningMs: 0 });

    const wheelTask = taskWith(succeed, { settings: { databricks: { task: 'python_wheel_task', entry_point: 'train' } } }, wheelModule);
    wheelTask.module.entrypoint = 'dist/trainer-1.0-py3-none-any.whl';
    const wheel = await runTask(executor, wheelTask);
    expect(wheel.outcome.state).toBe('SUCCEEDED');
    const wheelSpec = submittedBody(2).tasks[0];
    const wheelPath = `${STAGING}/${digestDirName(wheelModule.digest)}/dist/trainer-1.0-py3-none-any.whl`;
    expect(wheelSpec.python_wheel_task).toMatchObject({ package_name: 'trainer', entry_point: 'train' });
    expect(JSON.parse(wheelSpec.python_wheel_task.named_parameters['atelier-params'])).toEqual(wheelTask.parameters);
    expect(wheelSpec.libraries).toEqual([{ whl: wheelPath }]);
  });

  it('submits the tasks of a hot cluster to its all-purpose cluster, with the provisioning time in the outcome', async () => {
    const executor = executorFor();
    await expect(executor.startHotCluster!({ name: 'warm', pool: 'databricks', spec: {} })).rejects.toThrow(/spec.clusterId must name an all-purpose cluster/);
    await executor.startHotCluster!({ name: 'warm', pool: 'databricks', spec: { clusterId: '0923-164208-meows279' } });
    const task = taskWith({ ...succeed, setupDurationMs: 0 }, { hotCluster: 'warm', settings: { databricks: { new_cluster: { num_workers: 8 } } } });
    const hot = await runTask(executor, task);
    expect(hot.outcome).toMatchObject({ state: 'SUCCEEDED', provisioningMs: 0 });
    expect(submittedBody(0).tasks[0]).toMatchObject({ existing_cluster_id: '0923-164208-meows279' });
    expect(submittedBody(0).tasks[0].new_cluster).toBeUndefined();

    await executor.endHotCluster!('warm');
    const cold = await runTask(executor, taskWith(succeed, { hotCluster: 'warm', settings: { databricks: { new_cluster: { num_workers: 8 } } } }));
    expect(cold.outcome, 'an ended hot cluster: the task launches its own cluster').toMatchObject({ state: 'SUCCEEDED', provisioningMs: 95_000 });
    expect(submittedBody(1).tasks[0].new_cluster).toMatchObject({ num_workers: 8 });
  });

  it('fails bad settings permanently, before calling Databricks', async () => {
    const bad = await runTask(executorFor(), taskWith(succeed, { settings: { databricks: { task: 'notebook_task' } } }));
    expect(bad.outcome).toMatchObject({ state: 'FAILED', reason: 'invalid-settings', retryable: false });
    expect(bad.outcome.message).toContain('settings.databricks.task');
    const clusterless = await runTask(executorFor({ defaultCluster: undefined }), taskWith(succeed));
    expect(clusterless.outcome).toMatchObject({ state: 'FAILED', reason: 'invalid-task', retryable: false });
    expect(clusterless.outcome.message).toContain('no cluster');
    expect(submitRequests()).toHaveLength(0);
  });

  it('lets a task choose neither a cluster the operator did not list nor what its cluster may read or run as', async () => {
    const executor = executorFor({ existingClusterIds: ['listed-cluster'] });
    const foreign = await runTask(executor, taskWith(succeed, { settings: { databricks: { existing_cluster_id: 'another-teams-cluster' } } }));
    expect(foreign.outcome).toMatchObject({ state: 'FAILED', reason: 'invalid-settings', retryable: false });
    expect(foreign.outcome.message).toContain('existingClusterIds');
    for (const field of ['aws_attributes', 'init_scripts', 'single_user_name', 'data_security_mode', 'policy_id', 'docker_image']) {
      const escalated = await runTask(executor, taskWith(succeed, { settings: { databricks: { new_cluster: { num_workers: 1, [field]: {} } } } }));
      expect(escalated.outcome, field).toMatchObject({ state: 'FAILED', reason: 'invalid-settings', retryable: false });
      expect(escalated.outcome.message, field).toContain(`may not set ${field}`);
    }
    expect(submitRequests()).toHaveLength(0);
    const sized = await runTask(
      executor,
      taskWith(succeed, { settings: { databricks: { new_cluster: { num_workers: 2, spark_conf: { 'spark.sql.shuffle.partitions': '8' } } } } }),
    );
    expect(sized.outcome.state).toBe('SUCCEEDED');
  });

  it('honours Retry-After on a 429, and backs off with jitter without one', async () => {
    standIn.fault('/api/2.2/jobs/runs/submit', { status: 429, retryAfter: '7' });
    standIn.fault('/api/2.2/jobs/runs/submit', { status: 429 });
    const { outcome } = await runTask(executorFor(), taskWith(succeed));
    expect(outcome.state).toBe('SUCCEEDED');
    expect(submitRequests().map((r) => r.fault ?? 'ok')).toEqual(['429', '429', 'ok']);
    // 7 s as asked; then the second try's backoff: 1 s step, equal jitter at random() = 0.5 → 750 ms.
    expect(clock.sleeps.slice(0, 2)).toEqual([7_000, 750]);
    expect(standIn.runsCreated()).toBe(1);
  });

  it('retries 5xx, lock contention, hung and dropped connections, then succeeds', async () => {
    standIn.fault('/api/2.2/jobs/runs/submit', { status: 400, errorCode: 'COULD_NOT_ACQUIRE_LOCK' });
    standIn.fault('/api/2.2/jobs/runs/get', { status: 500 });
    standIn.fault('/api/2.2/jobs/runs/get', { status: 503 });
    standIn.fault('/api/2.2/jobs/runs/get', { kind: 'hang' });
    standIn.fault('/api/2.2/jobs/runs/get-output', { kind: 'reset' });
    const { outcome, lines } = await runTask(executorFor({ requestTimeoutMs: 100 }), taskWith(succeed));
    expect(outcome.state).toBe('SUCCEEDED');
    expect(lines).toContain('hello from databricks');
    expect(standIn.requests.filter((r) => r.fault).map((r) => r.fault)).toEqual(['400', '500', '503', 'hang', 'reset']);
    expect(standIn.runsCreated()).toBe(1);
  });

  it('does not retry a permanent 400, and fails the task permanently with the API message', async () => {
    standIn.fault('/api/2.2/jobs/runs/submit', { status: 400, errorCode: 'INVALID_PARAMETER_VALUE', message: 'Invalid spark version 99.x' });
    const { outcome } = await runTask(executorFor(), taskWith(succeed));
    expect(outcome).toMatchObject({ state: 'FAILED', reason: 'rejected', retryable: false });
    expect(outcome.message).toContain('INVALID_PARAMETER_VALUE: Invalid spark version 99.x');
    expect(submitRequests()).toHaveLength(1);
  });

  it('retries malformed JSON; a persistent one is a retryable system failure with a clear message', async () => {
    standIn.fault('/api/2.2/jobs/runs/get', { kind: 'malformed' });
    expect((await runTask(executorFor(), taskWith(succeed))).outcome.state).toBe('SUCCEEDED');

    standIn.fault('/api/2.2/jobs/runs/submit', { kind: 'malformed' }, { times: 3 });
    const { outcome } = await runTask(executorFor({ retry: { maxAttempts: 3 } }), taskWith(succeed));
    expect(outcome).toMatchObject({ state: 'FAILED', retryable: true, systemFailure: true });
    expect(outcome.message).toMatch(/malformed JSON.*gave up after 3 tries/);
  });

  it('retries a submit whose answer was lost with the same idempotency token: one run', async () => {
    standIn.fault('/api/2.2/jobs/runs/submit', { kind: 'drop-response' });
    const { outcome, handle } = await runTask(executorFor(), taskWith(succeed));
    expect(outcome.state).toBe('SUCCEEDED');
    const tokens = submitRequests().map((r) => (r.body as { idempotency_token: string }).idempotency_token);
    expect(tokens).toHaveLength(2);
    expect(new Set(tokens).size).toBe(1);
    expect(standIn.runsCreated()).toBe(1);
    expect(handle.runId).toBe(standIn.run(handle.runId!)!.runId);
  });

  it('adopts the run of a resubmitted attempt (a restarted host), and starts a new one for the next attempt', async () => {
    const task = taskWith({ states: [runState.running()] });
    const first = await executorFor().submit(task, contextFor(task));
    const again = await executorFor().submit(task, contextFor(task));
    expect(again).toEqual(first);
    expect(standIn.runsCreated()).toBe(1);
    const next = await executorFor().submit({ ...task, attempt: 2 }, contextFor(task));
    expect(next.runId).not.toBe(first.runId);
    expect(standIn.runsCreated()).toBe(2);
  });

  it('fails permanently on refused credentials, saying to check them, without retrying', async () => {
    const { outcome } = await runTask(executorFor({ auth: { token: 'dapi-wrong' } }), taskWith(succeed));
    expect(outcome).toMatchObject({ state: 'FAILED', reason: 'credentials', retryable: false });
    expect(outcome.message).toMatch(/HTTP 401 UNAUTHENTICATED.*Check the executor's Databricks credentials/);
    expect(standIn.requests).toHaveLength(1); // the first upload, refused; nothing retried

    standIn.fault('/api/2.2/jobs/runs/get', { status: 403, errorCode: 'PERMISSION_DENIED', message: 'no access to run' });
    const lost = await runTask(executorFor(), taskWith(succeed));
    expect(lost.outcome).toMatchObject({ state: 'FAILED', reason: 'credentials', retryable: false });
    expect(lost.outcome.message).toContain('PERMISSION_DENIED');
  });

  it('OAuth M2M: client credentials at /oidc/v1/token, one cached token, refreshed ~5 min before it expires', async () => {
    const executor = executorFor({ auth: { clientId: 'sp-client', clientSecret: 'sp-secret' } });
    expect((await runTask(executor, taskWith(succeed))).outcome.state).toBe('SUCCEEDED');
    const [tokenRequest, ...more] = standIn.requestsTo('/oidc/v1/token');
    expect(more).toHaveLength(0);
    expect(tokenRequest).toMatchObject({
      method: 'POST',
      contentType: 'application/x-www-form-urlencoded',
      authorization: `Basic ${Buffer.from('sp-client:sp-secret').toString('base64')}`,
      body: { grant_type: 'client_credentials', scope: 'all-apis' },
    });
    const apiRequests = standIn.requests.filter((r) => r.path.startsWith('/api/'));
    expect(apiRequests.every((r) => r.authorization === 'Bearer oauth-standin-1')).toBe(true);

    clock.advance(50 * 60_000); // 50 min into a 60 min token (plus a few polls): still fresh
    await runTask(executor, taskWith(succeed));
    expect(standIn.tokensIssued()).toBe(1);
    clock.advance(5 * 60_000); // inside the last 5 minutes: refreshed before use
    await runTask(executor, taskWith(succeed));
    expect(standIn.tokensIssued()).toBe(2);
    expect(standIn.requests.at(-1)!.authorization).toBe('Bearer oauth-standin-2');

    standIn.revokeTokens(); // a 401 on a minted token: fetch a fresh one once, and carry on
    expect((await runTask(executor, taskWith(succeed))).outcome.state).toBe('SUCCEEDED');
    expect(standIn.tokensIssued()).toBe(3);
  });

  it('OAuth with a wrong secret fails permanently, naming what to check', async () => {
    const { outcome } = await runTask(executorFor({ auth: { clientId: 'sp-client', clientSecret: 'nope' } }), taskWith(succeed));
    expect(outcome).toMatchObject({ state: 'FAILED', reason: 'credentials', retryable: false });
    expect(outcome.message).toMatch(/invalid_client.*clientId and clientSecret/);
  });

  it('refuses to start without credentials, host or staging directory', () => {
    const base = { host: standIn.url, stagingDir: STAGING };
    const make = (o: Record<string, unknown>) => () => createDatabricksExecutor(o as unknown as DatabricksExecutorOptions);
    expect(make({ ...base })).toThrow(/databricks executor: no Databricks credentials: give `auth: \{ token \}`/);
    expect(make({ ...base, auth: { token: ' ' } })).toThrow(/token is empty/);
    expect(make({ ...base, auth: { clientId: 'sp-client' } })).toThrow(/clientSecret is missing/);
    expect(make({ ...base, auth: { clientSecret: 's' } })).toThrow(/clientId is missing/);
    expect(make({ stagingDir: STAGING, auth: { token: TOKEN } })).toThrow(/`host` must be the workspace URL/);
    expect(make({ host: standIn.url, auth: { token: TOKEN } })).toThrow(/`stagingDir` is required/);
    expect(make({ ...base, stagingDir: 'dbfs:/atelier', auth: { token: TOKEN } })).toThrow(/give `upload` for other storage/);
    expect(make({ host: 'adb-1.2.azuredatabricks.net', auth: { token: TOKEN }, upload: async () => 'dbfs:/x' })).not.toThrow();
  });

  it('cancel accepts a run that has finished or that Databricks does not know', async () => {
    const executor = executorFor();
    const task = taskWith(succeed);
    const { handle, outcome } = await runTask(executor, task);
    expect(outcome.state).toBe('SUCCEEDED');
    await executor.cancel(handle, task, 'cancelled');
    await executor.cancel({ runId: 424_242, cluster: 'new' }, task, 'cancelled');
    expect(standIn.requestsTo('/api/2.2/jobs/runs/cancel').length).toBe(2);
    expect(standIn.run(handle.runId!)!.final).toEqual(runState.succeeded());
  });

  it('a slow cancel reports CANCELLED as soon as Databricks says TERMINATING', async () => {
    const executor = executorFor();
    const task = taskWith({ states: [runState.pending(), runState.running()], cancelPolls: 50 });
    const ctx = contextFor(task);
    const handle = await executor.submit(task, ctx);
    const waiting = executor.wait(handle, task, ctx);
    while (!ctx.progressMessages.includes('running')) await new Promise((r) => setTimeout(r, 5));
    await executor.cancel(handle, task, 'cancelled');
    const outcome = await waiting;
    expect(outcome).toMatchObject({ state: 'CANCELLED', reason: 'cancelled' });
    expect(outcome.message).toContain('terminating');
    expect(standIn.run(handle.runId!)!.endedAt).toBeUndefined(); // still TERMINATING: we did not wait it out
  });

  it('a host shutdown leaves the run running, for the next host to adopt', async () => {
    const executor = executorFor();
    const task = taskWith({ states: [runState.running()] });
    const ctx = contextFor(task);
    const handle = await executor.submit(task, ctx);
    const waiting = executor.wait(handle, task, ctx);
    ctx.controller.abort('shutdown');
    await executor.cancel(handle, task, 'shutdown');
    expect(await waiting).toMatchObject({ state: 'CANCELLED', reason: 'shutdown' });
    expect(standIn.requestsTo('/api/2.2/jobs/runs/cancel')).toHaveLength(0);
  });

  it('logs an unknown state once and treats it as still in progress', async () => {
    const script: RunScript = {
      states: [runState.pending(), runState.running(), runState.unknown(), runState.unknown(), runState.unknown(), runState.succeeded()],
    };
    const { outcome, lines } = await runTask(executorFor(), taskWith(script));
    expect(outcome.state).toBe('SUCCEEDED');
    expect(lines.filter((l) => l.includes('HIBERNATING, a state this executor does not know'))).toHaveLength(1);
  });

  it('reads the legacy state alone, and the status object alone (timeouts included)', async () => {
    const legacyOnly = await runTask(executorFor(), taskWith({ shape: 'state', states: [runState.pending(), runState.running(), runState.timedOut(60)] }));
    expect(legacyOnly.outcome).toMatchObject({ state: 'TIMED_OUT', reason: 'timeout' });
    const statusOnly = await runTask(executorFor(), taskWith({ shape: 'status', states: [runState.pending(), runState.timedOut(60)] }));
    expect(statusOnly.outcome).toMatchObject({ state: 'TIMED_OUT' });
    const legacySuccess = await runTask(executorFor(), taskWith({ ...succeed, shape: 'state' }));
    expect(legacySuccess.outcome.state).toBe('SUCCEEDED');
    expect(legacySuccess.ctx.progressMessages).toEqual(['provisioning', 'running']);
  });

  it('streams get-output: the error, its trace and a truncation note; cluster failures are retryable system failures', async () => {
    const failed = await runTask(
      executorFor(),
      taskWith({
        states: [runState.pending(), runState.running(), runState.failed()],
        output: {
          logs: 'step 1\nstep 2',
          logs_truncated: true,
          error: 'ValueError: bad input',
          error_trace: 'Traceback (most recent call last):\n  File "main.py"',
        },
      }),
    );
    expect(failed.outcome).toMatchObject({ state: 'FAILED', reason: 'run-failed' });
    expect(failed.outcome.retryable).toBeUndefined();
    expect(failed.outcome.message).toMatch(/^Databricks run \d+ ended TERMINATED\/RUN_EXECUTION_ERROR: .*; error: ValueError: bad input \(http:/);
    expect(failed.ctx.logs.filter((l) => l.stream === 'stdout').map((l) => l.line)).toEqual(['step 1', 'step 2']);
    expect(failed.lines).toContain('Traceback (most recent call last):');
    expect(failed.lines.some((l) => l.includes('logs_truncated'))).toBe(true);

    const cluster = await runTask(executorFor(), taskWith({ states: [runState.pending(), runState.clusterFailed()] }));
    expect(cluster.outcome).toMatchObject({ state: 'FAILED', reason: 'cluster-error', retryable: true, systemFailure: true });
  });

  it('gives up polling after a long outage: a retryable system failure, and the run is asked to stop', async () => {
    standIn.fault('/api/2.2/jobs/runs/get', { status: 502 }, { times: 10_000 });
    const { outcome, lines } = await runTask(executorFor({ pollErrorBudgetMs: 5 * 60_000 }), taskWith({ states: [runState.running()] }));
    expect(outcome).toMatchObject({ state: 'FAILED', reason: 'databricks-unreachable', retryable: true, systemFailure: true });
    expect(outcome.message).toContain('HTTP 502');
    expect(lines.some((l) => l.includes('still trying'))).toBe(true);
    expect(standIn.requestsTo('/api/2.2/jobs/runs/cancel')).toHaveLength(1);
  });
});
