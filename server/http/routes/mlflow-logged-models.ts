// MLflow 3's logged-models REST endpoints (what `mlflow.<flavor>.log_model` calls), with the model id and tag key
// in the path as MLflow's protocol puts them: POST logged-models (create), GET|PATCH|DELETE logged-models/<id> (get,
// finalize, delete), POST logged-models/search, PATCH logged-models/<id>/tags, DELETE logged-models/<id>/tags/<key>,
// POST logged-models/<id>/params, GET logged-models/<id>/artifacts/directories; and POST runs/outputs (log_model
// links the model to its run). Files go through the mlflow-artifacts routes at the model's artifact_uri.
import { AtelierError, badInput } from '../../errors';
import { findTracked } from '../../tracking/access';
import { searchLoggedModels } from '../../tracking/logged-model-search';
import {
  artifactUriOf,
  createLoggedModel,
  deleteLoggedModel,
  deleteLoggedModelTag,
  finalizeLoggedModel,
  findLoggedModel,
  listModelArtifacts,
  loggedModelsJson,
  logLoggedModelParams,
  logModelOutput,
  setLoggedModelTags,
} from '../../tracking/logged-models';
import { type Endpoint, int, keyValues, list, MlflowError, type Params, str } from '../mlflow-params';

/** A refusal of the model's state (finalized twice, files written after READY): MLflow's INVALID_STATE. */
export async function inState<T>(work: () => Promise<T>): Promise<T> {
  try {
    return await work();
  } catch (error) {
    if (error instanceof AtelierError && error.code === 'CONFLICT') throw new MlflowError('CONFLICT', 'INVALID_STATE', 400, error.message);
    throw error;
  }
}

const one = async (db: Parameters<Endpoint['handle']>[0]['db'], model: Parameters<typeof loggedModelsJson>[1][number]) => ({
  model: (await loggedModelsJson(db, [model]))[0],
});

const decode = (s: string) => {
  try {
    return decodeURIComponent(s);
  } catch {
    throw badInput('The path is not valid percent-encoding: encode each segment as encodeURIComponent does.');
  }
};

/** The endpoint for a path under `logged-models` (and the ids it names), or undefined: not a logged-models route. */
export function loggedModelEndpoint(path: string): Endpoint | undefined {
  const [, ...parts] = path.split('/');
  if (!parts.length)
    return {
      methods: ['POST'],
      handle: async ({ db, caller, p }) => {
        const model = await createLoggedModel(db, caller, {
          experimentId: str(p, 'experiment_id'),
          name: str(p, 'name', false),
          modelType: str(p, 'model_type', false),
          sourceRunId: str(p, 'source_run_id', false),
          params: keyValues(p, 'params'),
          tags: keyValues(p, 'tags'),
        });
        return one(db, model);
      },
    };
  if (parts.length === 1 && parts[0] === 'search')
    return {
      methods: ['POST'],
      reads: true,
      handle: async ({ db, caller, p }) =>
        searchLoggedModels(db, caller, {
          experimentIds: list(p, 'experiment_ids').map(String),
          filter: str(p, 'filter', false),
          orderBy: list(p, 'order_by') as never,
          maxResults: int(p, 'max_results'),
          pageToken: str(p, 'page_token', false) || undefined,
        }),
    };
  const id = decode(parts[0]!);
  const rest = parts.slice(1).join('/');
  if (!rest)
    return {
      methods: ['GET', 'PATCH', 'DELETE'],
      handle: async ({ db, caller, p, method }) => {
        if (method === 'GET') return one(db, (await findLoggedModel(db, caller, id)).model);
        if (method === 'DELETE') return void (await deleteLoggedModel(db, caller, id));
        return one(db, await inState(() => finalizeLoggedModel(db, caller, id, str(p, 'status'))));
      },
    };
  if (rest === 'tags')
    return { methods: ['PATCH'], handle: async ({ db, caller, p }) => one(db, await setLoggedModelTags(db, caller, id, keyValues(p, 'tags'))) };
  // A tag key may hold "/" (MLflow's keys do): the rest of the path is the key.
  if (parts.length >= 3 && parts[1] === 'tags' && parts[2])
    return { methods: ['DELETE'], handle: async ({ db, caller }) => void (await deleteLoggedModelTag(db, caller, id, parts.slice(2).map(decode).join('/'))) };
  if (rest === 'params')
    return { methods: ['POST'], handle: async ({ db, caller, p }) => void (await logLoggedModelParams(db, caller, id, keyValues(p, 'params'))) };
  if (rest === 'artifacts/directories')
    return {
      methods: ['GET'],
      handle: async ({ db, caller, p }) => {
        const dir = str(p, 'artifact_directory_path', false);
        const { found, entries } = await listModelArtifacts(db, caller, { id }, dir);
        const prefix = dir.replace(/\/+$/, '');
        return {
          root_uri: artifactUriOf(found.model),
          files: entries.map((e) => ({ path: prefix ? `${prefix}/${e.path}` : e.path, is_dir: e.isDir, ...(e.size === null ? {} : { file_size: e.size }) })),
        };
      },
    };
  return undefined;
}

export const loggedModelRoutes =
  'POST logged-models, GET|PATCH|DELETE logged-models/<model_id>, POST logged-models/search, PATCH logged-models/<model_id>/tags, DELETE logged-models/<model_id>/tags/<key>, POST logged-models/<model_id>/params, GET logged-models/<model_id>/artifacts/directories';

export const loggedModelRunEndpoints: Record<string, Endpoint> = {
  /** log_model links its model to the run it was logged from: Atelier keeps that link as the model's source run. */
  'runs/outputs': {
    methods: ['POST'],
    handle: async ({ db, caller, p }) => {
      const runId = str(p, 'run_id');
      await findTracked(db, caller, runId);
      const outputs = list(p, 'models').map((item) => ({ id: str((item ?? {}) as Params, 'model_id'), step: int((item ?? {}) as Params, 'step') ?? 0 }));
      for (const { id, step } of outputs) await logModelOutput(db, caller, runId, id, step);
      return {};
    },
  },
};
