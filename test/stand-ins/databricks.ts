// A loopback stand-in for the Databricks endpoints the executor uses, following the documented paths, payloads and
// error shape (`{"error_code", "message"}`): Jobs API 2.2 runs/submit|get|cancel|get-output with a scripted run life
// cycle, the Files API upload, and the OAuth M2M token endpoint. Faults (429s, 5xx, hung or dropped connections,
// malformed JSON, lock contention) are queued per path. No Databricks workspace can run here; this is what the
// executor is verified against, and only this.
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';

/** One runs/get answer's state, in both shapes: the `status` object (2.1+) and the deprecated `state`. */
export interface ScriptedState {
  status?: Record<string, unknown>;
  state?: Record<string, unknown>;
}

export interface RunScript {
  /** The state each `runs/get` of the run returns in turn; the last one repeats. */
  states: ScriptedState[];
  /** Which shape runs/get returns: both (as Databricks does today), only `status`, or only the legacy `state`. */
  shape?: 'both' | 'status' | 'state';
  /** What runs/get-output returns once the run has ended. */
  output?: { logs?: string; logs_truncated?: boolean; error?: string; error_trace?: string; notebook_output?: Record<string, unknown> };
  /** After a cancel, polls answered TERMINATING before TERMINATED (a slow cancel). Default 1. */
  cancelPolls?: number;
  /** setup_duration reported for the task run (ms); default: the time seen between PENDING and RUNNING. */
  setupDurationMs?: number;
}

export type Fault =
  | { status: number; errorCode?: string; message?: string; retryAfter?: string }
  | { kind: 'hang' } // accept the request and never answer
  | { kind: 'reset' } // drop the connection without an answer
  | { kind: 'malformed' } // 200 with a body that is not JSON
  | { kind: 'drop-response' }; // process the request, then drop the connection (the client never hears the answer)

export interface RecordedRequest {
  method: string;
  path: string;
  query: Record<string, string>;
  authorization: string | undefined;
  contentType: string | undefined;
  body: unknown;
  /** Set when a queued fault answered this request instead of the API. */
  fault?: string;
  at: number;
}

interface StandInRun {
  runId: number;
  taskRunId: number;
  runName: string;
  token: string | undefined;
  body: Record<string, unknown>;
  script: RunScript;
  polls: number;
  cancelAtPoll: number | undefined;
  createdAt: number;
  pendingSeenAt?: number;
  runningSeenAt?: number;
  endedAt?: number;
  /** The state a run that has ended keeps answering with. */
  final?: ScriptedState;
}

export interface DatabricksStandInOptions {
  /** Personal access tokens accepted as bearer tokens. */
  tokens?: string[];
  /** An OAuth M2M client the token endpoint accepts. */
  oauthClient?: { clientId: string; clientSecret: string; expiresInSeconds?: number };
  /** Script for runs that name none. */
  defaultScript?: RunScript;
}

const DEFAULT_SCRIPT: RunScript = { states: [] };

/** Builders for scripted states, each consistent across both shapes. */
export const runState = {
  queued: (message = 'Waiting for a free slot in the workspace'): ScriptedState => ({
    status: { state: 'QUEUED', queue_details: { code: 'ACTIVE_RUNS_LIMIT_REACHED', message } },
    state: { life_cycle_state: 'QUEUED', state_message: message },
  }),
  pending: (message = 'Waiting for cluster'): ScriptedState => ({
    status: { state: 'PENDING' },
    state: { life_cycle_state: 'PENDING', state_message: message },
  }),
  running: (message = 'In run'): ScriptedState => ({ status: { state: 'RUNNING' }, state: { life_cycle_state: 'RUNNING', state_message: message } }),
  terminating: (): ScriptedState => ({ status: { state: 'TERMINATING' }, state: { life_cycle_state: 'TERMINATING', state_message: '' } }),
  terminated: (code: string, type: string, resultState: string, message = '', lifeCycle = 'TERMINATED'): ScriptedState => ({
    status: { state: 'TERMINATED', termination_details: { code, type, message } },
    state: {
      life_cycle_state: lifeCycle,
      result_state: resultState,
      state_message: message,
      user_cancelled_or_timedout: resultState === 'CANCELED' || resultState === 'TIMEDOUT',
    },
  }),
  succeeded: () => runState.terminated('SUCCESS', 'SUCCESS', 'SUCCESS'),
  failed: (message = 'Workload failed, see run output for details') => runState.terminated('RUN_EXECUTION_ERROR', 'CLIENT_ERROR', 'FAILED', message),
  clusterFailed: (message = 'Cluster was terminated. Reason: CLOUD_PROVIDER_LAUNCH_FAILURE') =>
    runState.terminated('CLUSTER_ERROR', 'CLOUD_FAILURE', 'FAILED', message, 'INTERNAL_ERROR'),
  internalError: (message = 'Unexpected failure in the Jobs service') =>
    runState.terminated('INTERNAL_ERROR', 'INTERNAL_ERROR', 'FAILED', message, 'INTERNAL_ERROR'),
  invalidConfig: (message = 'Invalid run configuration') => runState.terminated('INVALID_RUN_CONFIGURATION', 'CLIENT_ERROR', 'FAILED', message),
  timedOut: (seconds = 60) => runState.terminated('CANCELED', 'CLIENT_ERROR', 'TIMEDOUT', `Run timed out after ${seconds} seconds`),
  userCanceled: () => runState.terminated('USER_CANCELED', 'SUCCESS', 'CANCELED', 'Run cancelled by user'),
  /** A state Databricks may add later: the executor must treat it as still in progress. */
  unknown: (name = 'HIBERNATING'): ScriptedState => ({ status: { state: name }, state: { life_cycle_state: name, state_message: 'a state from the future' } }),
};

export interface DatabricksStandIn {
  url: string;
  requests: RecordedRequest[];
  /** Requests to one path (and method), faulted ones included. */
  requestsTo(path: string, method?: string): RecordedRequest[];
  /** Runs created: idempotent replays of runs/submit do not count. */
  runsCreated(): number;
  run(runId: number): Readonly<StandInRun> | undefined;
  /** Scripts that runs may name with the `standin` module parameter. */
  script(name: string, script: RunScript): void;
  /** The next `times` requests matching `method path` get `fault` instead of an answer. */
  fault(path: string, fault: Fault, options?: { method?: string; times?: number }): void;
  /** Files written through the Files API, by path. */
  files: Map<string, Buffer>;
  tokensIssued(): number;
  /** Make every OAuth token issued so far invalid (as a revoked secret would). */
  revokeTokens(): void;
  close(): Promise<void>;
}

export async function createDatabricksStandIn(options: DatabricksStandInOptions = {}): Promise<DatabricksStandIn> {
  const patTokens = new Set(options.tokens ?? ['dapi-standin-token']);
  const oauthTokens = new Map<string, number>(); // token → expiry (ms)
  const requests: RecordedRequest[] = [];
  const runs = new Map<number, StandInRun>();
  const byToken = new Map<string, number>();
  const scripts = new Map<string, RunScript>();
  const faults: { method?: string; path: string; fault: Fault; remaining: number }[] = [];
  const files = new Map<string, Buffer>();
  const sockets = new Set<Socket>();
  const hung = new Set<ServerResponse>();
  let nextRunId = 1_000;
  let issued = 0;
  let url = '';

  const server = createServer((req, res) => {
    void handle(req, res).catch((err) => {
      if (!res.headersSent) send(res, 500, { error_code: 'INTERNAL_ERROR', message: `stand-in bug: ${String(err)}` });
    });
  });
  server.on('connection', (socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });

  async function handle(req: IncomingMessage, res: ServerResponse) {
    const parsedUrl = new URL(req.url ?? '/', 'http://standin');
    const raw = await readBody(req);
    const contentType = req.headers['content-type'];
    let body: unknown = raw.length > 0 ? raw : undefined;
    if (contentType?.startsWith('application/json') && raw.length > 0) {
      try {
        body = JSON.parse(raw.toString('utf8'));
      } catch {
        body = raw.toString('utf8');
      }
    } else if (contentType?.startsWith('application/x-www-form-urlencoded')) {
      body = Object.fromEntries(new URLSearchParams(raw.toString('utf8')));
    }
    const record: RecordedRequest = {
      method: req.method ?? 'GET',
      path: parsedUrl.pathname,
      query: Object.fromEntries(parsedUrl.searchParams),
      authorization: req.headers.authorization,
      contentType,
      body,
      at: Date.now(),
    };
    requests.push(record);

    const fault = takeFault(record.method, record.path);
    if (fault && !('kind' in fault && fault.kind === 'drop-response')) {
      record.fault = 'kind' in fault ? fault.kind : String(fault.status);
      return answerWithFault(res, fault);
    }
    if (fault) record.fault = 'drop-response';

    const [status, payload] = route(record, raw);
    if (fault) {
      // The work is done, but the answer never arrives: the client must retry, and idempotency must hold.
      res.socket?.destroy();
      return;
    }
    send(res, status, payload);
  }

  function takeFault(method: string, path: string): Fault | undefined {
    const index = faults.findIndex((f) => (f.method === undefined || f.method === method) && f.path === path);
    if (index < 0) return undefined;
    const entry = faults[index]!;
    if (--entry.remaining <= 0) faults.splice(index, 1);
    return entry.fault;
  }

  function answerWithFault(res: ServerResponse, fault: Fault) {
    if ('kind' in fault) {
      if (fault.kind === 'hang') return void hung.add(res);
      if (fault.kind === 'reset') return void res.socket?.destroy();
      res.writeHead(200, { 'Content-Type': 'application/json' });
      return void res.end('{"run_id": 12, "state": {"life_cycle_state": "RUNN');
    }
    const headers: Record<string, string> = {};
    if (fault.retryAfter !== undefined) headers['Retry-After'] = fault.retryAfter;
    const errorCode = fault.errorCode ?? defaultErrorCode(fault.status);
    send(res, fault.status, { error_code: errorCode, message: fault.message ?? `stand-in fault: ${errorCode}` }, headers);
  }

  function route(r: RecordedRequest, raw: Buffer): [number, unknown] {
    if (r.method === 'POST' && r.path === '/oidc/v1/token') return token(r);
    const auth = authorise(r.authorization);
    if (auth) return auth;
    const key = `${r.method} ${r.path}`;
    if (key === 'POST /api/2.2/jobs/runs/submit') return submit(r.body);
    if (key === 'GET /api/2.2/jobs/runs/get') return getRun(r.query.run_id);
    if (key === 'POST /api/2.2/jobs/runs/cancel') return cancel(r.body);
    if (key === 'GET /api/2.2/jobs/runs/get-output') return getOutput(r.query.run_id);
    if (r.method === 'PUT' && r.path.startsWith('/api/2.0/fs/files/')) {
      const path = decodeURIComponent(r.path.slice('/api/2.0/fs/files'.length));
      if (!path.startsWith('/Volumes/')) return invalid(`Files API paths must be volume paths (/Volumes/…), not ${path}`);
      if (r.query.overwrite === 'false' && files.has(path)) return [409, { error_code: 'ALREADY_EXISTS', message: `${path} already exists` }];
      files.set(path, raw);
      return [204, undefined];
    }
    return [404, { error_code: 'ENDPOINT_NOT_FOUND', message: `No API found for '${r.method} ${r.path}'` }];
  }

  function authorise(header: string | undefined): [number, unknown] | undefined {
    const match = /^Bearer (.+)$/.exec(header ?? '');
    if (!match) return [401, { error_code: 'UNAUTHENTICATED', message: 'Credential was not sent or was of an unsupported type for this API.' }];
    const bearer = match[1]!;
    if (patTokens.has(bearer)) return undefined;
    const expiry = oauthTokens.get(bearer);
    if (expiry !== undefined && expiry > Date.now()) return undefined;
    return [401, { error_code: 'UNAUTHENTICATED', message: 'Invalid access token.' }];
  }

  function token(r: RecordedRequest): [number, unknown] {
    const client = options.oauthClient;
    const basic = /^Basic (.+)$/.exec(r.authorization ?? '');
    const [id, secret] = basic ? Buffer.from(basic[1]!, 'base64').toString('utf8').split(':') : [];
    const form = (r.body ?? {}) as Record<string, string>;
    if (!r.contentType?.startsWith('application/x-www-form-urlencoded') || form.grant_type !== 'client_credentials') {
      return [400, { error: 'invalid_request', error_description: 'grant_type must be client_credentials, form-encoded' }];
    }
    if (!client || id !== client.clientId || secret !== client.clientSecret) {
      return [401, { error: 'invalid_client', error_description: 'Client authentication failed' }];
    }
    const expiresIn = client.expiresInSeconds ?? 3_600;
    const accessToken = `oauth-standin-${++issued}`;
    oauthTokens.set(accessToken, Date.now() + expiresIn * 1_000);
    return [200, { access_token: accessToken, token_type: 'Bearer', expires_in: expiresIn, scope: form.scope ?? 'all-apis' }];
  }

  function submit(body: unknown): [number, unknown] {
    if (!body || typeof body !== 'object') return invalid('Request body must be a JSON object');
    const b = body as Record<string, unknown>;
    const token = b.idempotency_token;
    if (token !== undefined && (typeof token !== 'string' || token.length > 64)) {
      return invalid('idempotency_token must be a string of at most 64 characters');
    }
    if (typeof token === 'string' && byToken.has(token)) return [200, { run_id: byToken.get(token) }];
    const tasks = b.tasks;
    if (!Array.isArray(tasks) || tasks.length === 0) return invalid('tasks must be a non-empty array');
    for (const task of tasks as Record<string, unknown>[]) {
      if (typeof task.task_key !== 'string' || task.task_key === '') return invalid('task_key is required for every task');
      const clusters = ['new_cluster', 'existing_cluster_id', 'job_cluster_key'].filter((k) => task[k] !== undefined);
      if (clusters.length !== 1)
        return invalid(`Exactly one of new_cluster, existing_cluster_id or job_cluster_key must be specified for task ${task.task_key}`);
      const spark = task.spark_python_task as Record<string, unknown> | undefined;
      const wheel = task.python_wheel_task as Record<string, unknown> | undefined;
      if (!spark && !wheel) return invalid(`Task ${task.task_key} needs a task type (spark_python_task, python_wheel_task, …)`);
      if (spark && typeof spark.python_file !== 'string') return invalid('spark_python_task.python_file is required');
      if (wheel && (typeof wheel.package_name !== 'string' || typeof wheel.entry_point !== 'string')) {
        return invalid('python_wheel_task.package_name and entry_point are required');
      }
    }
    const runId = nextRunId++;
    const run: StandInRun = {
      runId,
      taskRunId: runId + 500_000,
      runName: typeof b.run_name === 'string' ? b.run_name : 'Untitled',
      token: typeof token === 'string' ? token : undefined,
      body: b,
      script: scriptOf(tasks[0] as Record<string, unknown>),
      polls: 0,
      cancelAtPoll: undefined,
      createdAt: Date.now(),
    };
    runs.set(runId, run);
    if (run.token) byToken.set(run.token, runId);
    return [200, { run_id: runId }];
  }

  /** A run picks its script by the `standin` module parameter: a registered name, or the script itself. */
  function scriptOf(task: Record<string, unknown>): RunScript {
    let params: Record<string, unknown> = {};
    const spark = task.spark_python_task as { parameters?: string[] } | undefined;
    const wheel = task.python_wheel_task as { named_parameters?: Record<string, string> } | undefined;
    const json = spark?.parameters?.[spark.parameters.indexOf('--atelier-params') + 1] ?? wheel?.named_parameters?.['atelier-params'];
    try {
      params = JSON.parse(json ?? '{}');
    } catch {
      // not ours to judge: the default script
    }
    const chosen = params.standin;
    if (typeof chosen === 'string' && scripts.has(chosen)) return scripts.get(chosen)!;
    if (chosen && typeof chosen === 'object' && Array.isArray((chosen as RunScript).states)) return chosen as RunScript;
    return options.defaultScript ?? DEFAULT_SCRIPT;
  }

  /** Where the run is now; every runs/get advances it one step (the stand-in's clock is the poll). */
  function advance(run: StandInRun): ScriptedState {
    const poll = run.polls++;
    if (run.final) return run.final;
    const now = Date.now();
    if (run.cancelAtPoll !== undefined) {
      if (poll - run.cancelAtPoll < (run.script.cancelPolls ?? 1)) return runState.terminating();
      run.endedAt = now;
      return (run.final = runState.userCanceled());
    }
    const states = run.script.states;
    const scripted = states.length > 0 ? states[Math.min(poll, states.length - 1)]! : runState.running();
    if (isTerminal(scripted)) {
      run.endedAt = now;
      return (run.final = scripted);
    }
    if (scripted.status?.state === 'PENDING' || scripted.state?.life_cycle_state === 'PENDING') run.pendingSeenAt ??= now;
    if (scripted.status?.state === 'RUNNING' || scripted.state?.life_cycle_state === 'RUNNING') run.runningSeenAt ??= now;
    return scripted;
  }

  function getRun(id: string | undefined): [number, unknown] {
    const run = runs.get(Number(id));
    if (!run) return invalid(`Run ${id} does not exist.`);
    const scripted = advance(run);
    return [200, describeRun(run, scripted)];
  }

  function describeRun(run: StandInRun, scripted: ScriptedState) {
    const shape = run.script.shape ?? 'both';
    const states: Record<string, unknown> = {};
    if (shape !== 'state' && scripted.status) states.status = scripted.status;
    if (shape !== 'status' && scripted.state) states.state = scripted.state;
    const task = run.body.tasks as Record<string, unknown>[];
    const setup =
      run.script.setupDurationMs ?? (run.pendingSeenAt !== undefined && run.runningSeenAt !== undefined ? run.runningSeenAt - run.pendingSeenAt : 0);
    const ended = run.endedAt !== undefined;
    return {
      job_id: 7_000 + run.runId,
      run_id: run.runId,
      number_in_job: run.runId,
      run_name: run.runName,
      run_type: 'SUBMIT_RUN',
      format: 'MULTI_TASK',
      run_page_url: `${url}/?o=1234#job/${7_000 + run.runId}/run/${run.runId}`,
      start_time: run.createdAt,
      end_time: ended ? run.endedAt : 0,
      setup_duration: 0, // multi-task runs report durations per task, and run_duration overall
      execution_duration: 0,
      cleanup_duration: 0,
      run_duration: ended ? run.endedAt! - run.createdAt : undefined,
      ...states,
      tasks: [
        {
          run_id: run.taskRunId,
          task_key: task[0]?.task_key,
          ...states,
          setup_duration: setup,
          execution_duration: ended && run.runningSeenAt !== undefined ? run.endedAt! - run.runningSeenAt : 0,
          cleanup_duration: 0,
          start_time: run.createdAt,
          end_time: ended ? run.endedAt : 0,
          attempt_number: 0,
        },
      ],
    };
  }

  function cancel(body: unknown): [number, unknown] {
    const runId = Number((body as { run_id?: unknown } | undefined)?.run_id);
    const run = runs.get(runId);
    if (!run) return invalid(`Run ${runId} does not exist.`);
    // Asynchronous, and a no-op for a run that has already ended.
    if (run.endedAt === undefined && run.cancelAtPoll === undefined) run.cancelAtPoll = run.polls;
    return [200, {}];
  }

  function getOutput(id: string | undefined): [number, unknown] {
    const asParent = runs.get(Number(id));
    if (asParent) {
      return invalid('Retrieving the output of runs with multiple tasks is not supported. Please retrieve the output of each individual task run instead.');
    }
    const run = [...runs.values()].find((r) => r.taskRunId === Number(id));
    if (!run) return invalid(`Run ${id} does not exist.`);
    const metadata = { run_id: run.taskRunId, task_key: (run.body.tasks as Record<string, unknown>[])[0]?.task_key };
    if (run.endedAt === undefined) return [200, { metadata }];
    return [200, { metadata, ...(run.script.output ?? {}) }];
  }

  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

  return {
    url,
    requests,
    requestsTo: (path, method) => requests.filter((r) => r.path === path && (method === undefined || r.method === method)),
    runsCreated: () => runs.size,
    run: (runId) => runs.get(runId),
    script: (name, script) => void scripts.set(name, script),
    fault: (path, fault, o = {}) => void faults.push({ path, fault, method: o.method, remaining: o.times ?? 1 }),
    files,
    tokensIssued: () => issued,
    revokeTokens: () => oauthTokens.clear(),
    async close() {
      for (const res of hung) res.socket?.destroy();
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

function isTerminal(s: ScriptedState) {
  const life = s.status?.state ?? s.state?.life_cycle_state;
  return life === 'TERMINATED' || life === 'SKIPPED' || life === 'INTERNAL_ERROR';
}

function invalid(message: string, errorCode = 'INVALID_PARAMETER_VALUE'): [number, unknown] {
  return [400, { error_code: errorCode, message }];
}

function defaultErrorCode(status: number) {
  if (status === 429) return 'REQUEST_LIMIT_EXCEEDED';
  if (status === 503) return 'TEMPORARILY_UNAVAILABLE';
  if (status === 401) return 'UNAUTHENTICATED';
  if (status === 403) return 'PERMISSION_DENIED';
  if (status >= 500) return 'INTERNAL_ERROR';
  return 'INVALID_PARAMETER_VALUE';
}

function send(res: ServerResponse, status: number, payload: unknown, headers: Record<string, string> = {}) {
  if (payload === undefined) {
    res.writeHead(status, headers);
    res.end();
    return;
  }
  res.writeHead(status, { 'Content-Type': 'application/json', ...headers });
  res.end(JSON.stringify(payload));
}

function readBody(req: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}
