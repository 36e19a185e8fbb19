// Reads of the registry for the API, batched by id for the per-request loaders.
import { and, asc, desc, eq, ilike, inArray, or } from 'drizzle-orm';
import type { Db } from '../db/client';
import {
  type ModelAlias,
  type ModelAliasEvent,
  type ModelPromotion,
  type ModelVersion,
  modelAliasEvents,
  modelAliases,
  modelPromotions,
  modelVersions,
  type RegisteredModel,
  registeredModels,
} from '../db/tables/registry';
import type { PromotionState } from '../vocabulary';

export const modelsByIds = (db: Db, ids: string[]): Promise<RegisteredModel[]> =>
  ids.length ? db.select().from(registeredModels).where(inArray(registeredModels.id, ids)) : Promise.resolve([]);

export const modelVersionsByIds = (db: Db, ids: string[]): Promise<ModelVersion[]> =>
  ids.length ? db.select().from(modelVersions).where(inArray(modelVersions.id, ids)) : Promise.resolve([]);

export const versionsOfModels = (db: Db, ids: string[]): Promise<ModelVersion[]> =>
  db.select().from(modelVersions).where(inArray(modelVersions.modelId, ids)).orderBy(desc(modelVersions.version));

export const aliasesOfModels = (db: Db, ids: string[]): Promise<ModelAlias[]> =>
  db.select().from(modelAliases).where(inArray(modelAliases.modelId, ids)).orderBy(asc(modelAliases.alias));

export const aliasEventsOfModels = (db: Db, ids: string[]): Promise<ModelAliasEvent[]> =>
  db.select().from(modelAliasEvents).where(inArray(modelAliasEvents.modelId, ids)).orderBy(desc(modelAliasEvents.createdAt), desc(modelAliasEvents.id));

export const promotionsOfModels = (db: Db, ids: string[]): Promise<ModelPromotion[]> =>
  db.select().from(modelPromotions).where(inArray(modelPromotions.modelId, ids)).orderBy(desc(modelPromotions.createdAt));

/** Models by name, optionally in one namespace or matching a search word; at most `limit`. */
export function listModels(db: Db, filter: { namespace?: string | null; search?: string | null; limit: number }): Promise<RegisteredModel[]> {
  const word = filter.search ? `%${filter.search.replace(/[\\%_]/g, (c) => `\\${c}`)}%` : null;
  return db
    .select()
    .from(registeredModels)
    .where(
      and(
        filter.namespace ? eq(registeredModels.namespace, filter.namespace) : undefined,
        word ? or(ilike(registeredModels.name, word), ilike(registeredModels.description, word)) : undefined,
      ),
    )
    .orderBy(asc(registeredModels.namespace), asc(registeredModels.name))
    .limit(filter.limit);
}

export function pendingPromotions(db: Db, state: PromotionState, limit: number): Promise<ModelPromotion[]> {
  return db.select().from(modelPromotions).where(eq(modelPromotions.state, state)).orderBy(desc(modelPromotions.createdAt)).limit(limit);
}
