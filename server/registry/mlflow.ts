// Atelier's registry as MLflow's model registry REST API sees it: RegisteredModel and ModelVersion objects, the
// search filters MLflow clients send (`name = '...'`, `name LIKE '...'`, `run_id = '...'`, `run_id IN (...)`), and
// a version's `source` parsed into the task (an MLflow run_id is an Atelier task id) and the artifact folder it is
// registered from. A version's run_id, source, tags and description are run data of the producing run's domain:
// they are left out for a caller that may not read it (the version itself, like the model, is registry metadata).
import { subject } from '@casl/ability';
import { type AnyColumn, and, asc, desc, eq, ilike, inArray, like, ne, type SQL, sql } from 'drizzle-orm';
import { digestOf } from '../artifacts/digest';
import type { AppAbility } from '../auth/ability';
import type { Db } from '../db/client';
import { identities } from '../db/tables/identities';
import { loggedModels } from '../db/tables/logged-models';
import { type ModelVersion, modelAliases, modelVersions, type RegisteredModel, registeredModels } from '../db/tables/registry';
import { runs } from '../db/tables/runs';
import { runArtifacts } from '../db/tables/tracking';
import { AtelierError, badInput } from '../errors';
import { runDataDomains } from '../tracking/access';
import { artifactUriOf } from '../tracking/logged-models';
import { parseModelName } from './models';

/** A model name as MLflow sends it (free text), checked against Atelier's `namespace/name`. */
export function mlflowModelName(raw: string): string {
  try {
    parseModelName(raw);
    return raw;
  } catch (error) {
    if (!(error instanceof AtelierError)) throw error;
    throw badInput(
      `Registered model name "${raw}" is not an Atelier model name: use "namespace/name" (a namespace your team owns, e.g. "ml/churn"; each part 1–64 lowercase letters, digits, ".", "_" or "-").`,
    );
  }
}

/** The MLflow `source` of a version (and its run_id, which must agree) → the task and artifact folder. */
export function parseSource(source: string, runId: string): { taskId: string; path: string } {
  let taskId: string | undefined;
  let path: string | undefined;
  const runs = /^runs:\/([^/]+)(?:\/(.*))?$/.exec(source);
  // mlflow-artifacts:/<exp>/<run>/artifacts/<path>, mlflow-artifacts://host/..., or the proxied HTTP URL of it.
  const artifacts =
    /^(?:mlflow-artifacts:(?:\/\/[^/]*)?|https?:\/\/[^/]+(?:\/.*)?\/api\/2\.0\/mlflow-artifacts\/artifacts)\/+([^/]+)\/([^/]+)\/artifacts(?:\/(.*))?$/.exec(
      source,
    );
  if (runs) [, taskId, path] = runs;
  else if (artifacts) [, , taskId, path] = artifacts;
  else if (source.startsWith('models:/'))
    throw badInput(
      `Source "${source}" is a registered model version: register a logged model (models:/m-…), a run's artifact folder (runs:/<run_id>/<path>), or download the version and log it again.`,
    );
  else
    throw badInput(`Source "${source}" is not runs:/<run_id>/<path> or mlflow-artifacts:/<experiment_id>/<run_id>/artifacts/<path> of a run on this server.`);
  path = (path ?? '').replace(/\/+$/, '');
  if (!path) throw badInput(`Source "${source}" names no artifact folder: register "runs:/<run_id>/<artifact_path>" (the folder log_model wrote).`);
  if (runId && runId !== taskId) throw badInput(`run_id ${runId} is not the run of source "${source}" (${taskId}): pass that run's id, or leave run_id out.`);
  return { taskId: taskId!, path };
}

/** The MLflow 3 logged model a version's source names (`models:/m-…`, or model_id beside another source), if any. */
export function loggedModelOf(source: string, modelId: string): string | null {
  const m = /^models:\/(m-[^/]+)\/?$/.exec(source);
  if (m && modelId && modelId !== m[1])
    throw badInput(`model_id ${modelId} is not the logged model of source "${source}": pass that model's id, or leave model_id out.`);
  return m?.[1] ?? (modelId || null);
}

const fullName = (m: RegisteredModel) => `${m.namespace}/${m.name}`;
type Mlflow = Record<string, unknown>;

/** The MLflow-visible extras stored in a version's metadata at registration. */
interface MlflowMetadata {
  source?: string;
  /** The MLflow 3 logged model it was registered from. */
  model_id?: string;
  description?: string;
  tags?: Record<string, string>;
  run_link?: string;
}

async function userNames(db: Db, ids: (string | null)[]): Promise<Map<string, string>> {
  const wanted = [...new Set(ids.filter((id): id is string => !!id))];
  const rows = wanted.length ? await db.select({ id: identities.id, name: identities.name }).from(identities).where(inArray(identities.id, wanted)) : [];
  return new Map(rows.map((r) => [r.id, r.name]));
}

/** MLflow `ModelVersion` objects of these versions (in order). */
export async function versionsJson(db: Db, ability: AppAbility, versions: ModelVersion[]): Promise<Mlflow[]> {
  if (!versions.length) return [];
  const modelIds = [...new Set(versions.map((v) => v.modelId))];
  const [models, aliases, users] = await Promise.all([
    db.select().from(registeredModels).where(inArray(registeredModels.id, modelIds)),
    db
      .select()
      .from(modelAliases)
      .where(
        inArray(
          modelAliases.versionId,
          versions.map((v) => v.id),
        ),
      )
      .orderBy(asc(modelAliases.alias)),
    userNames(
      db,
      versions.map((v) => v.createdBy),
    ),
  ]);
  const byId = new Map(models.map((m) => [m.id, m]));
  return versions.map((v) => {
    const readable = ability.can('read', subject('ModelVersion', { ...v }), 'lineage');
    const meta = ((v.metadata as { mlflow?: MlflowMetadata }).mlflow ?? {}) as MlflowMetadata;
    const at = Math.max(v.createdAt.getTime(), v.deprecatedAt?.getTime() ?? 0);
    return {
      name: fullName(byId.get(v.modelId)!),
      version: String(v.version),
      creation_timestamp: v.createdAt.getTime(),
      last_updated_timestamp: at,
      user_id: (v.createdBy && users.get(v.createdBy)) || '',
      current_stage: v.deprecatedAt ? 'Archived' : 'None',
      status: 'READY',
      aliases: aliases.filter((a) => a.versionId === v.id).map((a) => a.alias),
      ...(readable
        ? {
            description: meta.description ?? '',
            source: meta.source ?? `runs:/${v.taskId}/${v.output}`,
            run_id: v.taskId,
            run_link: meta.run_link ?? '',
            ...(meta.model_id ? { model_id: meta.model_id } : {}),
            tags: Object.entries(meta.tags ?? {}).map(([key, value]) => ({ key, value })),
          }
        : {}),
    };
  });
}

/** MLflow `RegisteredModel` objects (latest_versions: the newest version, MLflow's stage "None"). */
export async function modelsJson(db: Db, ability: AppAbility, models: RegisteredModel[]): Promise<Mlflow[]> {
  if (!models.length) return [];
  const ids = models.map((m) => m.id);
  const [latest, aliases, users] = await Promise.all([
    db
      .selectDistinctOn([modelVersions.modelId])
      .from(modelVersions)
      .where(inArray(modelVersions.modelId, ids))
      .orderBy(modelVersions.modelId, desc(modelVersions.version)),
    db
      .select({ alias: modelAliases, version: modelVersions.version })
      .from(modelAliases)
      .innerJoin(modelVersions, eq(modelVersions.id, modelAliases.versionId))
      .where(inArray(modelAliases.modelId, ids)),
    userNames(
      db,
      models.map((m) => m.createdBy),
    ),
  ]);
  const latestJson = await versionsJson(db, ability, latest);
  return models.map((m) => {
    const i = latest.findIndex((v) => v.modelId === m.id);
    const mine = aliases.filter((a) => a.alias.modelId === m.id).sort((a, b) => (a.alias.alias < b.alias.alias ? -1 : 1));
    const updated = Math.max(m.createdAt.getTime(), i < 0 ? 0 : latest[i]!.createdAt.getTime(), ...mine.map((a) => a.alias.updatedAt.getTime()));
    return {
      name: fullName(m),
      creation_timestamp: m.createdAt.getTime(),
      last_updated_timestamp: updated,
      user_id: (m.createdBy && users.get(m.createdBy)) || '',
      description: m.description,
      latest_versions: i < 0 ? [] : [latestJson[i]],
      tags: [],
      aliases: mine.map((a) => ({ alias: a.alias.alias, version: String(a.version) })),
    };
  });
}

/**
 * Where MLflow clients download a version's files (`models:/name/N` or `models:/name@alias`): the run's artifact
 * folder it was registered from, while that folder still holds exactly the version's files (run artifacts can be
 * overwritten; the version's digest cannot).
 */
export async function downloadUri(db: Db, version: ModelVersion): Promise<string> {
  const loggedId = (version.metadata as { mlflow?: MlflowMetadata }).mlflow?.model_id;
  if (loggedId) {
    // A logged model's files are final once READY: its artifact_uri holds exactly the version's files while it is kept.
    const [logged] = await db.select().from(loggedModels).where(eq(loggedModels.id, loggedId));
    if (!logged || logged.deletedAt)
      throw new AtelierError(
        'CONFLICT',
        `Version ${version.version} was registered from logged model ${loggedId}, since deleted: MLflow clients cannot download it (its files are kept by digest in Atelier).`,
      );
    return artifactUriOf(logged);
  }
  const escaped = version.output.replace(/[\\%_]/g, (c) => `\\${c}`);
  const [rows, [run]] = await Promise.all([
    db
      .select({ path: runArtifacts.path, digest: runArtifacts.digest })
      .from(runArtifacts)
      .where(and(eq(runArtifacts.taskId, version.taskId), like(runArtifacts.path, `${escaped}/%`))),
    db.select({ experimentId: runs.experimentId }).from(runs).where(eq(runs.id, version.runId)),
  ]);
  const files = rows.map((r) => [r.path.slice(version.output.length + 1), r.digest]).sort((a, b) => (a[0]! < b[0]! ? -1 : 1));
  if (!rows.length || digestOf(files) !== version.digest)
    throw new AtelierError(
      'CONFLICT',
      `Version ${version.version} was registered from ${rows.length ? 'files its run has since overwritten' : `task output "${version.output}", not an artifact folder`}: MLflow clients cannot download it (its files are kept by digest in Atelier).`,
    );
  return `mlflow-artifacts:/${run?.experimentId ?? '0'}/${version.taskId}/artifacts/${version.output}`;
}

// ---- search ----

const clauseRe =
  /^\s*([a-z_.]+)\s*(=|!=|\bI?LIKE\b|\bIN\b)\s*('(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*"|\(\s*(?:'[^']*'|"[^"]*")(?:\s*,\s*(?:'[^']*'|"[^"]*"))*\s*\)|\d+)\s*(?:\bAND\b|$)/i;
const unquote = (s: string) => s.slice(1, -1).replace(/\\(.)/g, '$1');

interface Clause {
  key: string;
  op: string;
  value: string | string[];
}

function parseFilter(filter: string, keys: string[]): Clause[] {
  const clauses: Clause[] = [];
  let rest = filter.trim();
  while (rest) {
    const m = clauseRe.exec(rest);
    const key = (m?.[1] ?? '').toLowerCase().replace(/^attributes?\./, '');
    if (!m || !keys.includes(key))
      throw badInput(`Filter "${filter}" is not supported: use ${keys.join(' or ')} with =, !=, LIKE, ILIKE or IN ('a', 'b'), joined by AND.`);
    const raw = m[3]!;
    const op = m[2]!.toUpperCase();
    const value = raw.startsWith('(') ? [...raw.matchAll(/'([^']*)'|"([^"]*)"/g)].map((x) => x[1] ?? x[2]!) : /^['"]/.test(raw) ? unquote(raw) : raw;
    if ((op === 'IN') !== Array.isArray(value)) throw badInput(`Filter "${filter}": IN takes a list ('a', 'b'); the other operators one value.`);
    clauses.push({ key, op, value });
    rest = rest.slice(m[0].length).trim();
  }
  return clauses;
}

const nameSql = sql`${registeredModels.namespace} || '/' || ${registeredModels.name}`;

function compare(column: SQL, { op, value }: Clause): SQL {
  if (Array.isArray(value)) return inArray(column, value.length ? value : ['']);
  if (op === '=') return eq(column, value);
  if (op === '!=') return ne(column, value);
  return op === 'LIKE' ? like(column, value) : ilike(column, value);
}

function orderOf(orderBy: string[], columns: Record<string, SQL | AnyColumn>, fallback: SQL[]): SQL[] {
  return [
    ...orderBy.map((raw) => {
      const m = /^\s*([a-z_]+)(?:\s+(ASC|DESC))?\s*$/i.exec(raw);
      const column = m && Object.hasOwn(columns, m[1]!.toLowerCase()) ? columns[m[1]!.toLowerCase()]! : undefined;
      if (!column) throw badInput(`order_by "${raw}" is not supported: order by ${Object.keys(columns).join(', ')} [ASC|DESC].`);
      return (m![2] ?? 'ASC').toUpperCase() === 'DESC' ? desc(column) : asc(column);
    }),
    ...fallback,
  ];
}

export interface Page {
  filter: string;
  orderBy: string[];
  limit: number;
  offset: number;
}

export async function searchModels(db: Db, page: Page): Promise<RegisteredModel[]> {
  const where = parseFilter(page.filter, ['name']).map((c) => compare(nameSql, c));
  return db
    .select()
    .from(registeredModels)
    .where(and(...where))
    .orderBy(...orderOf(page.orderBy, { name: nameSql, creation_timestamp: registeredModels.createdAt }, [asc(nameSql), asc(registeredModels.id)]))
    .limit(page.limit)
    .offset(page.offset);
}

/** Versions matching the filter; one that filters on run_id sees only versions whose run data the caller may read. */
export async function searchVersions(db: Db, ability: AppAbility, page: Page): Promise<ModelVersion[]> {
  const clauses = parseFilter(page.filter, ['name', 'run_id']);
  const where = clauses.map((c) => (c.key === 'name' ? compare(nameSql, c) : compare(sql`${modelVersions.taskId}::text`, c)));
  if (clauses.some((c) => c.key === 'run_id')) {
    const readable = runDataDomains(ability);
    where.push(readable.length ? inArray(modelVersions.domain, readable) : sql`false`);
  }
  const rows = await db
    .select({ version: modelVersions })
    .from(modelVersions)
    .innerJoin(registeredModels, eq(registeredModels.id, modelVersions.modelId))
    .where(and(...where))
    .orderBy(
      ...orderOf(page.orderBy, { name: nameSql, version_number: modelVersions.version, creation_timestamp: modelVersions.createdAt }, [
        asc(nameSql),
        desc(modelVersions.version),
      ]),
    )
    .limit(page.limit)
    .offset(page.offset);
  return rows.map((r) => r.version);
}
