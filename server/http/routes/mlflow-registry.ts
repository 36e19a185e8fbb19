// MLflow's model registry REST endpoints (`registered-models/...`, `model-versions/...`) mapped onto Atelier's
// registry (server/registry/): every change goes through the registry's own functions, so namespace ownership,
// audited refusals, deprecation and the production promotion rule hold exactly as in GraphQL. An MLflow model name
// is Atelier's `namespace/name`. `model-versions/create` registers the artifact folder of its source
// (`runs:/<run_id>/<path>`) from the run's task (an MLflow run_id is an Atelier task id), with its lineage, or the
// files of a finalized MLflow 3 logged model (`models:/m-…`) with the lineage of the run that logged it. An
// alias in the production domain moves only by an approved promotion: setting it here answers PERMISSION_DENIED.
import { subject } from '@casl/ability';
import { desc, eq } from 'drizzle-orm';
import type { Db } from '../../db/client';
import { modelVersions, type RegisteredModel } from '../../db/tables/registry';
import { AtelierError, badInput, conflict, forbidden, notFound } from '../../errors';
import { aliasOf, checkAlias, setModelAlias } from '../../registry/aliases';
import { registerLoggedModel } from '../../registry/logged-models';
import { downloadUri, loggedModelOf, mlflowModelName, modelsJson, parseSource, searchModels, searchVersions, versionsJson } from '../../registry/mlflow';
import { findModel, findModelVersion, modelByName, saveModel } from '../../registry/models';
import { registerModelVersion } from '../../registry/versions';
import type { Caller } from '../../tracking/access';
import { decodeToken, encodeToken } from '../../tracking/mlflow';
import { type Endpoint, int, keyValues, list, MlflowError, notImplemented, type Params, str } from '../mlflow-params';

/** The model named by `name`, when the caller may see it; RESOURCE_DOES_NOT_EXIST otherwise. */
async function modelOf(db: Db, caller: Caller, p: Params, param = 'name'): Promise<RegisteredModel> {
  const name = mlflowModelName(str(p, param));
  const model = await findModel(db, name);
  if (!caller.ability.can('read', subject('Model', { ...model }))) throw notFound(`No registered model ${name}.`);
  return model;
}

async function versionOf(db: Db, caller: Caller, p: Params) {
  const model = await modelOf(db, caller, p);
  const version = str(p, 'version');
  if (!/^\d+$/.test(version)) throw badInput(`version must be a version number; got "${version}".`);
  return (await findModelVersion(db, `${model.namespace}/${model.name}@${version}`)).version;
}

const one = async (db: Db, caller: Caller, model: RegisteredModel) => ({ registered_model: (await modelsJson(db, caller.ability, [model]))[0] });
const strings = (p: Params, name: string) => (typeof p[name] === 'string' ? [p[name] as string] : list(p, name).map(String));

/** A page of a search: max_results within `max` (pages of at most `page`), and the offset its page_token carries. */
function pageOf(p: Params, defaults: { max: number; page: number }) {
  const max = int(p, 'max_results') ?? defaults.page;
  if (max < 1 || max > defaults.max) throw badInput(`max_results must be between 1 and ${defaults.max}.`);
  return {
    filter: str(p, 'filter', false),
    orderBy: strings(p, 'order_by'),
    limit: Math.min(max, defaults.page) + 1,
    offset: decodeToken(str(p, 'page_token', false) || undefined),
  };
}
const nextToken = <T>(rows: T[], page: { limit: number; offset: number }) =>
  rows.length === page.limit ? encodeToken(page.offset + page.limit - 1) : undefined;

export const registryEndpoints: Record<string, Endpoint> = {
  'registered-models/create': {
    methods: ['POST'],
    handle: async ({ db, caller, p }) => {
      const name = mlflowModelName(str(p, 'name'));
      if (keyValues(p, 'tags').length)
        throw badInput('Atelier keeps no tags on registered models: put them in the description, or on the versions (model-versions/create tags).');
      if (await modelByName(db, name)) throw conflict(`Registered model ${name} already exists.`);
      const model = await saveModel(db, caller.ability, caller.identity, { name, description: str(p, 'description', false) || null });
      return one(db, caller, model);
    },
  },
  'registered-models/get': { methods: ['GET'], handle: async ({ db, caller, p }) => one(db, caller, await modelOf(db, caller, p)) },
  'registered-models/update': {
    methods: ['PATCH', 'POST'],
    handle: async ({ db, caller, p }) => {
      const model = await modelOf(db, caller, p);
      const description = p.description === undefined || p.description === null ? null : str(p, 'description', false);
      return one(db, caller, await saveModel(db, caller.ability, caller.identity, { name: `${model.namespace}/${model.name}`, description }));
    },
  },
  'registered-models/rename': {
    methods: ['POST'],
    handle: async ({ db, caller, p }) => {
      await modelOf(db, caller, p);
      throw notImplemented(
        'Atelier does not rename registered models (a namespace/name is what its versions, aliases and lineage point at): register under the new name instead.',
      );
    },
  },
  'registered-models/delete': {
    methods: ['DELETE'],
    handle: async ({ db, caller, p }) => {
      await modelOf(db, caller, p);
      throw notImplemented(
        'Atelier keeps registered models and their versions (immutable, with audited lineage): deprecate a version instead (`npx atelier model deprecate NAMESPACE/NAME@VERSION`).',
      );
    },
  },
  'registered-models/search': {
    methods: ['GET', 'POST'],
    reads: true,
    handle: async ({ db, caller, p }) => {
      const page = pageOf(p, { max: 1000, page: 100 });
      const rows = await searchModels(db, page);
      const visible = rows.slice(0, page.limit - 1).filter((m) => caller.ability.can('read', subject('Model', { ...m })));
      return { registered_models: await modelsJson(db, caller.ability, visible), next_page_token: nextToken(rows, page) };
    },
  },
  'registered-models/get-latest-versions': {
    methods: ['POST', 'GET'],
    reads: true,
    handle: async ({ db, caller, p }) => {
      const model = await modelOf(db, caller, p);
      const all = await db.select().from(modelVersions).where(eq(modelVersions.modelId, model.id)).orderBy(desc(modelVersions.version));
      const json = await versionsJson(
        db,
        caller.ability,
        // The newest of each MLflow stage: "None", and "Archived" for deprecated versions.
        [all.find((v) => !v.deprecatedAt), all.find((v) => v.deprecatedAt)].filter((v) => v !== undefined),
      );
      const stages = strings(p, 'stages').map((s) => s.toLowerCase());
      return { model_versions: json.filter((v) => !stages.length || stages.includes(String(v.current_stage).toLowerCase())) };
    },
  },
  'registered-models/alias': {
    methods: ['POST', 'DELETE', 'GET'],
    handle: async ({ db, caller, p, method }) => {
      const model = await modelOf(db, caller, p);
      const name = `${model.namespace}/${model.name}`;
      const alias = str(p, 'alias');
      checkAlias(alias);
      if (method === 'GET') {
        const { version } = await findModelVersion(db, `${name}@${alias}`);
        return { model_version: (await versionsJson(db, caller.ability, [version]))[0] };
      }
      if (method === 'POST') {
        const version = str(p, 'version');
        if (!/^\d+$/.test(version)) throw badInput(`version must be a version number; got "${version}".`);
        await setModelAlias(db, caller.ability, caller.identity, { model: name, alias, version, reason: 'set through the MLflow API' });
        return {};
      }
      if (!(await aliasOf(db, model.id, alias))) throw notFound(`${name} has no alias "${alias}".`);
      throw notImplemented(
        `Atelier keeps every alias with its history: move "${alias}" to another version (POST registered-models/alias) or roll it back (\`npx atelier model rollback ${name} ${alias}\`).`,
      );
    },
  },
  'model-versions/create': {
    methods: ['POST'],
    handle: async ({ db, store, caller, p }) => {
      const name = mlflowModelName(str(p, 'name'));
      const source = str(p, 'source');
      const tags = Object.fromEntries(keyValues(p, 'tags').map((t) => [t.key, t.value]));
      const mlflow = { source, description: str(p, 'description', false), run_link: str(p, 'run_link', false), tags };
      const logged = loggedModelOf(source, str(p, 'model_id', false));
      if (logged) {
        try {
          const { version } = await registerLoggedModel(db, store, caller, { model: name, loggedModelId: logged, runId: str(p, 'run_id', false), mlflow });
          return { model_version: (await versionsJson(db, caller.ability, [version]))[0] };
        } catch (error) {
          if (error instanceof AtelierError && error.code === 'CONFLICT') throw new MlflowError('CONFLICT', 'INVALID_STATE', 400, error.message);
          throw error;
        }
      }
      const { taskId, path } = parseSource(source, str(p, 'run_id', false));
      try {
        const { version } = await registerModelVersion(db, store, caller.ability, caller.identity, {
          model: name,
          taskId,
          output: path,
          metadata: { mlflow },
        });
        return { model_version: (await versionsJson(db, caller.ability, [version]))[0] };
      } catch (error) {
        if (error instanceof AtelierError && error.code === 'CONFLICT')
          throw new MlflowError(
            'CONFLICT',
            'INVALID_STATE',
            400,
            `${error.message} With MLflow: end the run (mlflow.end_run, or leave the \`with mlflow.start_run()\` block), then call mlflow.register_model("runs:/${taskId}/${path}", "${name}").`,
          );
        throw error;
      }
    },
  },
  'model-versions/get': {
    methods: ['GET'],
    handle: async ({ db, caller, p }) => ({ model_version: (await versionsJson(db, caller.ability, [await versionOf(db, caller, p)]))[0] }),
  },
  'model-versions/get-download-uri': {
    methods: ['GET'],
    handle: async ({ db, caller, p }) => {
      const version = await versionOf(db, caller, p);
      if (!caller.ability.can('read', subject('ModelVersion', { ...version }), 'files'))
        throw forbidden(`The files of version ${version.version} are run data of the ${version.domain} domain: your teams need that domain's grant.`);
      try {
        return { artifact_uri: await downloadUri(db, version) };
      } catch (error) {
        if (error instanceof AtelierError && error.code === 'CONFLICT') throw new MlflowError('CONFLICT', 'INVALID_STATE', 400, error.message);
        throw error;
      }
    },
  },
  'model-versions/update': {
    methods: ['PATCH', 'POST'],
    handle: async ({ db, caller, p }) => {
      await versionOf(db, caller, p);
      throw notImplemented(
        'Atelier model versions are immutable (content-addressed, with their lineage): describe the model (registered-models/update), or give the description when registering (model-versions/create).',
      );
    },
  },
  'model-versions/search': {
    methods: ['GET', 'POST'],
    reads: true,
    handle: async ({ db, caller, p }) => {
      const page = pageOf(p, { max: 200_000, page: 1000 });
      const rows = await searchVersions(db, caller.ability, page);
      return { model_versions: await versionsJson(db, caller.ability, rows.slice(0, page.limit - 1)), next_page_token: nextToken(rows, page) };
    },
  },
};
