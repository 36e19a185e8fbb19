// Registering an MLflow 3 logged model (`register_model("models:/m-…")`, what log_model does with
// registered_model_name): a version of its files, once final (READY), content-addressed like every version, with the
// lineage of the run it was logged from. A model the caller may not read is answered like a missing one, and that
// refusal is audited like a missing task's; a PENDING or FAILED model is refused, saying what to do.
import type { ObjectStore } from '../artifacts/store';
import type { Db } from '../db/client';
import type { ModelVersion } from '../db/tables/registry';
import { AtelierError, badInput, conflict } from '../errors';
import type { Caller } from '../tracking/access';
import { type Found, findLoggedModel, loggedModelFiles } from '../tracking/logged-models';
import type { ModelFile } from '../vocabulary';
import { parseYaml } from '../yaml/parse';
import { assertMayChangeRegistry, assertMayWriteModel, auditedRegistry, RecordedError } from './access';
import { parseModelName } from './models';
import { registerModelVersion } from './versions';

export interface RegisterLogged {
  /** The registered model, `namespace/name`. */
  model: string;
  loggedModelId: string;
  /** MLflow's run_id, when given: it must be the model's source run. */
  runId?: string;
  /** MLflow's extras (source, description, tags), kept in the version's metadata with the model id. */
  mlflow: Record<string, unknown>;
}

export async function registerLoggedModel(
  db: Db,
  store: ObjectStore,
  caller: Caller,
  input: RegisterLogged,
): Promise<{ version: ModelVersion; created: boolean }> {
  const { ability, identity } = caller;
  assertMayChangeRegistry(ability, identity, 'model.version.register');
  const id = input.loggedModelId;
  const found = await auditedRegistry(db, async (): Promise<Found> => {
    await assertMayWriteModel(db, ability, identity, parseModelName(input.model), 'model.register');
    try {
      return await findLoggedModel(db, { ...caller, task: null }, id);
    } catch (error) {
      if (!(error instanceof AtelierError) || error.code !== 'NOT_FOUND') throw error;
      throw new RecordedError('NOT_FOUND', error.message, {
        identity,
        action: 'model.register',
        decision: 'deny',
        subject: `model:${input.model}`,
        rule: 'a version is registered only from a logged model whose run data the caller may read',
        details: { loggedModelId: id },
      });
    }
  });
  const { model } = found;
  if (input.runId && input.runId !== model.taskId)
    throw badInput(`run_id ${input.runId} is not the source run of logged model ${id}${model.taskId ? ` (${model.taskId})` : ''}: leave run_id out.`);
  if (model.status === 'PENDING')
    throw conflict(
      `Logged model ${id} is PENDING: its files may still change. Finalize it first (log_model does once its files are uploaded: PATCH logged-models/${id} with status LOGGED_MODEL_READY), then register models:/${id}.`,
    );
  if (model.status === 'FAILED') throw conflict(`Logged model ${id} failed to upload its files: log the model again and register the new one.`);
  if (!model.taskId)
    throw badInput(
      `Logged model ${id} was logged outside a run: an Atelier version keeps the run that made it. Log the model inside a run (with mlflow.start_run(): ...) and register that one.`,
    );
  const files = await loggedModelFiles(db, id);
  if (!files.length) throw badInput(`Logged model ${id} has no files: upload them to its artifact_uri before finalizing, then log it again.`);
  const described = await describedBy(store, files);
  return registerModelVersion(db, store, ability, identity, {
    model: input.model,
    taskId: model.taskId,
    output: `models:/${id}`,
    files,
    ...described,
    metadata: { mlflow: { ...input.mlflow, model_id: id } },
  });
}

/** At most this much of an MLmodel file is read for its flavor and signature. */
const MAX_MLMODEL_BYTES = 64 * 1024;

const jsonOf = (v: unknown) => {
  if (typeof v !== 'string') return v ?? null;
  try {
    return JSON.parse(v);
  } catch {
    return v;
  }
};

/**
 * The flavor and signature its MLmodel file declares (MLflow's model description at the root of its files): the first
 * flavor other than python_function (else python_function), and the signature's inputs/outputs as JSON. An MLmodel
 * that is missing, too large or not YAML describes nothing (the version is registered all the same).
 */
async function describedBy(store: ObjectStore, files: ModelFile[]): Promise<{ flavor?: string; signature?: Record<string, unknown> }> {
  const file = files.find((f) => f.path === 'MLmodel');
  if (!file || file.size > MAX_MLMODEL_BYTES) return {};
  let doc: unknown;
  try {
    doc = await parseYaml((await store.get(file.digest)).toString('utf8'));
  } catch {
    return {};
  }
  const { flavors, signature } = (doc && typeof doc === 'object' ? doc : {}) as { flavors?: unknown; signature?: unknown };
  const names = flavors && typeof flavors === 'object' ? Object.keys(flavors) : [];
  const flavor = names.find((n) => n !== 'python_function') ?? names[0];
  const sig = signature && typeof signature === 'object' ? (signature as Record<string, unknown>) : null;
  return {
    ...(flavor && flavor.length <= 100 ? { flavor } : {}),
    ...(sig ? { signature: { inputs: jsonOf(sig.inputs), outputs: jsonOf(sig.outputs) } } : {}),
  };
}
