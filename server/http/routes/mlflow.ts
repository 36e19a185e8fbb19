// Long because: one table of MLflow's REST endpoints (tracking and mlflow-artifacts) with their request parsing.
// MLflow's REST API (`/api/2.0/mlflow/...`, and `/ajax-api/2.0/mlflow/...` as MLflow's UI calls it) and its artifact
// routes (`/api/2.0/mlflow-artifacts/artifacts/...`), so MLflow clients log into Atelier with MLFLOW_TRACKING_URI and
// MLFLOW_TRACKING_TOKEN. Errors answer in MLflow's shape `{"error_code", "message"}`; a run the token may not read
// answers RESOURCE_DOES_NOT_EXIST exactly like a missing one. An MLflow run_id is an Atelier task id.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { pipeline } from 'node:stream/promises';
import { asc, ilike, sql } from 'drizzle-orm';
import type { ObjectStore } from '../../artifacts/store';
import { defineAbilityFor } from '../../auth/ability';
import type { Db } from '../../db/client';
import { experiments } from '../../db/tables/tracking';
import { AtelierError, badInput, domainErrorOf, notFound, retryAfterHeader } from '../../errors';
import { assertWithinInputLimits } from '../../errors/input-limits';
import { assertMayWriteSomething, type Caller, findTracked } from '../../tracking/access';
import { assertMayPutArtifact, EXECUTION_HEADER, executionOf, getArtifact, listArtifacts, putArtifact } from '../../tracking/artifacts';
import { changeExperiment } from '../../tracking/experiment-changes';
import { assertMayReadExperiments, taskExperimentId } from '../../tracking/experiments';
import { createExperiment, findExperiment, setRunDeleted, startExternalRun, updateTrackedRun } from '../../tracking/external-runs';
import { datasetInputsOf, logInputs, modelInputsOf } from '../../tracking/inputs';
import type { LiveFeed } from '../../tracking/live';
import {
  assertMayPutModelArtifact,
  getModelArtifact,
  listModelArtifacts,
  type ModelAt,
  putModelArtifact,
  withoutModelCopies,
} from '../../tracking/logged-models';
import { deleteTag, logBatch, logModelHistory, type MetricInput } from '../../tracking/logging';
import { decodeToken, encodeToken, experimentJson, metricHistory, mlflowRuns, searchRuns } from '../../tracking/mlflow';
import { authenticated } from '../authenticate';
import { declaredLengthOver, jsonBody, readBodyWithin } from '../body';
import { type Endpoint, float, int, keyValues, list, MlflowError, type Params, str } from '../mlflow-params';
import { peerOf } from '../peer';
import type { Route } from '../router';
import { UPLOAD_RETRY_AFTER_S, type UploadBudget, uploadReservation } from '../upload-budget';
import { inState, loggedModelEndpoint, loggedModelRoutes, loggedModelRunEndpoints } from './mlflow-logged-models';
import { registryEndpoints } from './mlflow-registry';

const trackingRe = /^\/(?:ajax-)?api\/2\.0\/mlflow\/(.*)$/;
const artifactsRe = /^\/(?:ajax-)?api\/2\.0\/mlflow-artifacts\/artifacts(?:\/(.*))?$/;
/** MLflow's own limit on a request's JSON body. */
const MAX_JSON_BYTES = 1024 * 1024;

const mlflowCodes: Record<string, [string, number]> = {
  NOT_FOUND: ['RESOURCE_DOES_NOT_EXIST', 404],
  BAD_USER_INPUT: ['INVALID_PARAMETER_VALUE', 400],
  CONFLICT: ['RESOURCE_ALREADY_EXISTS', 400],
  FORBIDDEN: ['PERMISSION_DENIED', 403],
  UNAUTHENTICATED: ['UNAUTHENTICATED', 401],
  PAYLOAD_TOO_LARGE: ['INVALID_PARAMETER_VALUE', 413],
  // MLflow's client retries a 503 after a pause (as Retry-After asks).
  TOO_MANY_UPLOADS: ['TEMPORARILY_UNAVAILABLE', 503],
  UNAVAILABLE: ['TEMPORARILY_UNAVAILABLE', 503],
  TOO_MANY_AUTH_FAILURES: ['REQUEST_LIMIT_EXCEEDED', 429],
};

const metricOf = (item: unknown, i: number): MetricInput & { modelId?: string } => {
  const m = (item ?? {}) as Params;
  if (typeof m.key !== 'string') throw badInput(`metrics[${i}].key must be a string.`);
  const modelId = str(m, 'model_id', false) || undefined;
  return {
    key: m.key,
    value: float(m.value, `metrics[${i}].value`),
    timestamp: int(m, 'timestamp'),
    step: int(m, 'step') ?? 0,
    ...(modelId ? { modelId } : {}),
  };
};
const runIdOf = (p: Params) => (p.run_id ? str(p, 'run_id') : str(p, 'run_uuid'));
const runOf = async (db: Db, caller: Caller, id: string) => {
  await findTracked(db, caller, id);
  return (await mlflowRuns(db, [id]))[0]!;
};

/** The experiment `ref` names, if the caller reads it (a task's token: its run's alone); NOT_FOUND otherwise. */
async function experimentOrNotFound(db: Db, caller: Caller, ref: string, byName = false) {
  const found = await findExperiment(db, ref);
  const own = await taskExperimentId(db, caller);
  if (!found || (byName && found.name !== ref) || (own !== undefined && found.id !== own))
    throw notFound(byName ? `No experiment named "${ref}".` : `No experiment ${ref}.`);
  return found;
}

const endpoints: Record<string, Endpoint> = {
  ...registryEndpoints,
  ...loggedModelRunEndpoints,
  'experiments/create': {
    methods: ['POST'],
    handle: async ({ db, caller, p }) => {
      const tags = Object.fromEntries(keyValues(p, 'tags').map((t) => [t.key, t.value]));
      return { experiment_id: (await createExperiment(db, caller, { name: str(p, 'name'), tags })).id };
    },
  },
  'experiments/get': {
    methods: ['GET'],
    handle: async ({ db, caller, p }) => {
      assertMayReadExperiments(caller);
      return { experiment: experimentJson(await experimentOrNotFound(db, caller, str(p, 'experiment_id'))) };
    },
  },
  'experiments/get-by-name': {
    methods: ['GET'],
    handle: async ({ db, caller, p }) => {
      assertMayReadExperiments(caller);
      return { experiment: experimentJson(await experimentOrNotFound(db, caller, str(p, 'experiment_name'), true)) };
    },
  },
  'experiments/search': {
    methods: ['GET', 'POST'],
    reads: true,
    handle: async ({ db, caller, p }) => {
      assertMayReadExperiments(caller);
      const max = int(p, 'max_results') ?? 1000;
      if (max < 1 || max > 50_000) throw badInput('max_results must be between 1 and 50000.');
      const filter = str(p, 'filter', false);
      const m = /^\s*(?:attributes\.)?name\s*(=|LIKE|ILIKE)\s*'([^']*)'\s*$/i.exec(filter);
      if (filter && !m) throw badInput(`Experiment filter "${filter}" is not supported: use name = '...' or name LIKE '...'.`);
      const view = str(p, 'view_type', false) || 'ACTIVE_ONLY';
      const offset = decodeToken(str(p, 'page_token', false) || undefined);
      const own = await taskExperimentId(db, caller);
      const rows = await db
        .select()
        .from(experiments)
        .where(
          sql`${view === 'ALL' ? sql`true` : view === 'DELETED_ONLY' ? sql`${experiments.deletedAt} is not null` : sql`${experiments.deletedAt} is null`} and ${
            m
              ? m[1] === '='
                ? sql`${experiments.name} = ${m[2]}`
                : m[1]!.toUpperCase() === 'LIKE'
                  ? sql`${experiments.name} like ${m[2]}`
                  : ilike(experiments.name, m[2]!)
              : sql`true`
          }${own === undefined ? sql`` : own === null ? sql` and false` : sql` and ${experiments.id} = ${own}`}`,
        )
        .orderBy(asc(experiments.createdAt), asc(experiments.id))
        .limit(max + 1)
        .offset(offset);
      return { experiments: rows.slice(0, max).map(experimentJson), next_page_token: rows.length > max ? encodeToken(offset + max) : undefined };
    },
  },
  // MLflow's experiment lifecycle: rename, delete (runs kept), restore, tags (server/tracking/experiment-changes.ts).
  'experiments/update': {
    methods: ['POST', 'PATCH'],
    handle: async ({ db, caller, p }) => void (await changeExperiment(db, caller, str(p, 'experiment_id'), { name: str(p, 'new_name') })),
  },
  'experiments/delete': {
    methods: ['POST'],
    handle: async ({ db, caller, p }) => void (await changeExperiment(db, caller, str(p, 'experiment_id'), { deleted: true })),
  },
  'experiments/restore': {
    methods: ['POST'],
    handle: async ({ db, caller, p }) => void (await changeExperiment(db, caller, str(p, 'experiment_id'), { deleted: false })),
  },
  'experiments/set-experiment-tag': {
    methods: ['POST'],
    handle: async ({ db, caller, p }) =>
      void (await changeExperiment(db, caller, str(p, 'experiment_id'), { setTags: [{ key: str(p, 'key'), value: str(p, 'value', false) }] })),
  },
  'experiments/delete-experiment-tag': {
    methods: ['POST', 'DELETE'],
    handle: async ({ db, caller, p }) => void (await changeExperiment(db, caller, str(p, 'experiment_id'), { deleteTags: [str(p, 'key')] })),
  },
  'runs/create': {
    methods: ['POST'],
    handle: async ({ db, feed, caller, p }) => {
      const tags = Object.fromEntries(keyValues(p, 'tags').map((t) => [t.key, t.value]));
      const start = int(p, 'start_time');
      const experiment = str(p, 'experiment_id', false) || null;
      if (experiment && experiment !== '0' && !(await findExperiment(db, experiment)))
        throw notFound(`No experiment ${experiment}: create it first (experiments/create), or name an existing one.`);
      const { task } = await startExternalRun(db, feed, caller, {
        experiment,
        name: str(p, 'run_name', false) || null,
        tags,
        startedAt: start === undefined ? undefined : new Date(start),
      });
      return { run: (await mlflowRuns(db, [task.id]))[0] };
    },
  },
  'runs/get': { methods: ['GET'], handle: async ({ db, caller, p }) => ({ run: await runOf(db, caller, runIdOf(p)) }) },
  'runs/update': {
    methods: ['POST'],
    handle: async ({ db, feed, caller, p }) => {
      const id = runIdOf(p);
      const end = int(p, 'end_time');
      await updateTrackedRun(db, feed, caller, id, {
        status: str(p, 'status', false) || null,
        endedAt: end === undefined ? null : new Date(end),
        name: str(p, 'run_name', false) || null,
      });
      return { run_info: (await mlflowRuns(db, [id]))[0]!.info };
    },
  },
  'runs/delete': { methods: ['POST'], handle: async ({ db, caller, p }) => void (await setRunDeleted(db, caller, runIdOf(p), true)) },
  'runs/restore': { methods: ['POST'], handle: async ({ db, caller, p }) => void (await setRunDeleted(db, caller, runIdOf(p), false)) },
  'runs/search': {
    methods: ['POST', 'GET'],
    reads: true,
    handle: async ({ db, caller, p }) => {
      const ids = list(p, 'experiment_ids').map(String);
      const orderBy = list(p, 'order_by').map(String);
      return searchRuns(db, caller, {
        experimentIds: ids,
        filter: str(p, 'filter', false),
        orderBy,
        maxResults: int(p, 'max_results'),
        pageToken: str(p, 'page_token', false) || undefined,
        viewType: str(p, 'run_view_type', false) || undefined,
      });
    },
  },
  'runs/log-metric': {
    methods: ['POST'],
    handle: async ({ db, feed, caller, p }) => void (await logBatch(db, feed, caller, runIdOf(p), { metrics: [metricOf(p, 0)] })),
  },
  'runs/log-parameter': {
    methods: ['POST'],
    handle: async ({ db, feed, caller, p }) => void (await logBatch(db, feed, caller, runIdOf(p), { params: keyValues({ params: [p] }, 'params') })),
  },
  'runs/set-tag': {
    methods: ['POST'],
    handle: async ({ db, feed, caller, p }) => void (await logBatch(db, feed, caller, runIdOf(p), { tags: keyValues({ tags: [p] }, 'tags') })),
  },
  'runs/log-model': {
    methods: ['POST'],
    handle: async ({ db, caller, p }) => void (await logModelHistory(db, caller, runIdOf(p), str(p, 'model_json'))),
  },
  'runs/log-inputs': {
    methods: ['POST'],
    handle: async ({ db, caller, p }) => void (await logInputs(db, caller, runIdOf(p), datasetInputsOf(p.datasets), modelInputsOf(p.models))),
  },
  'runs/delete-tag': { methods: ['POST'], handle: async ({ db, caller, p }) => void (await deleteTag(db, caller, runIdOf(p), str(p, 'key'))) },
  'runs/log-batch': {
    methods: ['POST'],
    handle: async ({ db, feed, caller, p }) =>
      void (await logBatch(db, feed, caller, runIdOf(p), {
        metrics: await withoutModelCopies(db, runIdOf(p), list(p, 'metrics').map(metricOf)),
        params: keyValues(p, 'params'),
        tags: keyValues(p, 'tags'),
      })),
  },
  'metrics/get-history': {
    methods: ['GET'],
    handle: async ({ db, caller, p }) => {
      const max = int(p, 'max_results') ?? 25_000;
      if (max < 1 || max > 25_000) throw badInput('max_results must be between 1 and 25000.');
      return metricHistory(db, caller, runIdOf(p), str(p, 'metric_key'), max, str(p, 'page_token', false) || undefined);
    },
  },
};

const supported = `${Object.entries(endpoints)
  .map(([path, e]) => `${e.methods.join('|')} ${path}`)
  .join(', ')}, ${loggedModelRoutes}`;

/**
 * `afterWrite`: called after each POST/PATCH/DELETE call answered (the registry's live feed and webhooks are kicked).
 * `uploads`: the memory every upload in progress shares (an artifact is read whole before it is stored).
 */
export function useMlflow(options: {
  db: Db;
  feed: LiveFeed;
  store: ObjectStore;
  maxArtifactBytes: number;
  uploads?: UploadBudget;
  afterWrite?: () => void;
}): Route {
  const { db, feed, store } = options;
  return {
    name: 'mlflow',
    matches: (url) => trackingRe.test(url.pathname) || artifactsRe.test(url.pathname),
    async handle(req, res, url) {
      const json = (status: number, body: unknown) =>
        void res.writeHead(status, { 'content-type': 'application/json', 'cache-control': 'no-store' }).end(JSON.stringify(body ?? {}));
      const fail = (code: string, status: number, message: string) => json(status, { error_code: code, message });
      try {
        const session = await authenticated(db, { authorization: req.headers.authorization, peer: peerOf(req) });
        if (!session) return fail('UNAUTHENTICATED', 401, 'Missing or unknown bearer token: set MLFLOW_TRACKING_TOKEN to an Atelier token.');
        const caller: Caller = { identity: session.identity, ability: defineAbilityFor(session.identity, session.grants, session.scopes), task: session.task };
        const tracking = trackingRe.exec(url.pathname);
        if (tracking) {
          const path = tracking[1]!;
          const endpoint = /^logged-models(\/|$)/.test(path) ? loggedModelEndpoint(path) : Object.hasOwn(endpoints, path) ? endpoints[path] : undefined;
          if (!endpoint?.methods.includes(req.method ?? 'GET'))
            return fail(
              'ENDPOINT_NOT_FOUND',
              404,
              `${req.method} ${url.pathname} is not implemented by Atelier's MLflow API. Supported (under /api/2.0/mlflow/): ${supported}; artifacts: PUT/GET /api/2.0/mlflow-artifacts/artifacts/<path>, GET /api/2.0/mlflow-artifacts/artifacts?path=.`,
            );
          // A write by a token that may change nothing is refused before its body is read and parsed.
          if (req.method !== 'GET' && !endpoint.reads) assertMayWriteSomething(caller);
          const p = await paramsOf(req, url);
          const answer = await endpoint.handle({ db, feed, store, caller, p, method: req.method ?? 'GET' });
          if (req.method !== 'GET') options.afterWrite?.();
          return json(200, answer);
        }
        return await artifacts(req, res, url, caller, json, fail);
      } catch (error) {
        const known = domainErrorOf(error);
        if (!known) throw error;
        const [code, status] =
          known instanceof MlflowError ? [known.mlflowCode, known.mlflowStatus] : (mlflowCodes[known.code] ?? ['INTERNAL_ERROR', known.status]);
        if (known.code === 'TOO_MANY_UPLOADS') res.setHeader('retry-after', String(UPLOAD_RETRY_AFTER_S));
        for (const [name, value] of Object.entries(retryAfterHeader(known))) res.setHeader(name, value);
        return fail(code, status, known.message);
      }
    },
  };

  async function artifacts(
    req: IncomingMessage,
    res: ServerResponse,
    url: URL,
    caller: Caller,
    json: (status: number, body: unknown) => void,
    fail: (code: string, status: number, message: string) => void,
  ) {
    // The raw path, before URL resolution folds `..` away: a `..` or `.` segment is refused, never resolved.
    const raw = (req.url ?? '').split('?')[0]!.split('/').map(safeDecode);
    if (raw.some((s) => s === '..' || s === '.')) throw badInput('Artifact paths may not contain "." or ".." segments.');
    const rest = artifactsRe.exec(url.pathname)![1];
    if (!rest) {
      if (req.method !== 'GET')
        return fail('ENDPOINT_NOT_FOUND', 404, 'List artifacts with GET /api/2.0/mlflow-artifacts/artifacts?path=<experiment>/<run>/artifacts[/dir].');
      const at = locate(url.searchParams.get('path') ?? '', true);
      const { entries } = 'model' in at ? await listModelArtifacts(db, caller, at.model, at.path) : await listArtifacts(db, caller, at.task, at.path);
      return json(200, { files: entries.map((e) => ({ path: e.path, is_dir: e.isDir, ...(e.size === null ? {} : { file_size: e.size }) })) });
    }
    const at = locate(rest.split('/').map(safeDecode).join('/'), false);
    if (req.method === 'PUT' || req.method === 'POST') {
      // Who may put the file is known from its path: refused before a byte of the body is read or held in the
      // uploads' budget (else any token, a viewer's, could keep that budget full and others' uploads waiting).
      if ('model' in at) await inState(() => assertMayPutModelArtifact(db, caller, at.model, at.path));
      else await assertMayPutArtifact(db, caller, at.task, at.path);
      const execution = executionOf(caller, req.headers[EXECUTION_HEADER]);
      if (declaredLengthOver(req, options.maxArtifactBytes)) throw new AtelierError('PAYLOAD_TOO_LARGE', tooLarge());
      const release = options.uploads?.reserve(uploadReservation(req.headers['content-length'], options.maxArtifactBytes)) ?? (() => undefined);
      try {
        const body = await readBodyWithin(req, options.maxArtifactBytes);
        if (!body) throw new AtelierError('PAYLOAD_TOO_LARGE', tooLarge());
        if ('model' in at) await inState(() => putModelArtifact(db, store, caller, at.model, at.path, body));
        else await putArtifact(db, store, caller, at.task, at.path, body, execution);
      } finally {
        release();
      }
      return json(200, {});
    }
    if (req.method === 'GET') {
      const object = 'model' in at ? await getModelArtifact(db, store, caller, at.model, at.path) : await getArtifact(db, store, caller, at.task, at.path);
      res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': object.size, 'cache-control': 'private, no-store' });
      await pipeline(object.body, res).catch(() => res.destroy());
      return;
    }
    return fail('ENDPOINT_NOT_FOUND', 404, `${req.method} is not supported on artifacts: PUT (upload) and GET (download, or list with ?path=).`);
  }

  function tooLarge() {
    return `An artifact is at most ${Math.floor(options.maxArtifactBytes / 1024 / 1024)} MiB (ATELIER_MAX_UPLOAD_MB).`;
  }
}

/**
 * `<experiment>/<run>/artifacts[/path]` → the task and the path under it; `<experiment>/models/<model_id>/artifacts[/path]`
 * (a logged model's artifact_uri) → the model and the path under it.
 */
function locate(full: string, root: boolean): { task: string; path: string } | { model: ModelAt; path: string } {
  const parts = full.replace(/^\/+/, '').split('/');
  if (parts[1] === 'models') {
    const [, , model, artifactsDir, ...path] = parts;
    if (!model || artifactsDir !== 'artifacts' || (!root && !path.length))
      throw badInput(
        `Artifact path "${full}" is not <experiment_id>/models/<model_id>/artifacts/<path> (the logged model's artifact_uri followed by the file's path).`,
      );
    return { model: { id: model, experimentId: parts[0]! }, path: path.join('/') };
  }
  const [, task, artifactsDir, ...path] = parts;
  if (!task || artifactsDir !== 'artifacts' || (!root && !path.length))
    throw badInput(`Artifact path "${full}" is not <experiment_id>/<run_id>/artifacts/<path> (the run's artifact_uri followed by the file's path).`);
  return { task, path: path.join('/') };
}

function safeDecode(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    throw badInput('The artifact path is not valid percent-encoding: encode each segment as encodeURIComponent does.');
  }
}

/** The query string's values, and a JSON body's (which wins). */
async function paramsOf(req: IncomingMessage, url: URL): Promise<Params> {
  const p: Params = {};
  for (const [k, v] of url.searchParams) {
    if (k in p) p[k] = [...(Array.isArray(p[k]) ? (p[k] as unknown[]) : [p[k]]), v];
    else p[k] = v;
  }
  assertWithinInputLimits(p, 'The query string', 'BAD_USER_INPUT', '(query)');
  if (req.method === 'GET') return p;
  if (declaredLengthOver(req, MAX_JSON_BYTES)) throw new AtelierError('PAYLOAD_TOO_LARGE', 'A request body is at most 1 MB (as on MLflow): split the batch.');
  const body = await readBodyWithin(req, MAX_JSON_BYTES);
  if (!body) throw new AtelierError('PAYLOAD_TOO_LARGE', 'A request body is at most 1 MB (as on MLflow): split the batch.');
  if (!body.length) return p;
  // Held to the limits every edge keeps: a NUL or deep nesting was a 500 here (from Postgres, a stack overflow).
  const parsed = jsonBody(body, 'The request body', 'The request body is not JSON.', '(body)');
  if (!parsed || typeof parsed !== 'object' || Array.isArray(parsed)) throw badInput('The request body must be a JSON object.');
  return { ...p, ...(parsed as Params) };
}
