// The model page's GraphQL documents: the model with its versions (label, metrics), aliases, alias history and
// promotion requests, each with the caller's `viewerCan`; a version's lineage; and the registry's mutations.
import { graphql, type ResultOf } from '../../graphql';

export const MODEL = graphql(`
  query ModelPage($name: String!) {
    model(name: $name) {
      id
      fullName
      description
      owner { name }
      requirements { metric min max }
      viewerCan { requestPromotion { allowed reason } moveAliases { allowed reason } }
      versions {
        id
        version
        digest
        flavor
        domain
        deprecated
        deprecationReason
        createdAt
        createdBy { name }
        label { level categories }
        metrics { name value step }
      }
      aliases { alias domain updatedAt updatedBy { name } version { id version } }
      aliasHistory { alias domain action reason at from { version } to { version } movedBy { name } }
      promotions {
        id
        alias
        reason
        state
        createdAt
        decidedAt
        decisionReason
        version { version }
        requestedBy { name }
        decidedBy { name }
        viewerCan { decide { allowed reason } }
      }
    }
  }
`);

export const LINEAGE = graphql(`
  query ModelVersionLineage($ref: String!) {
    modelVersion(ref: $ref) {
      id
      version
      aliases { alias }
      lineage {
        cacheKey
        task { id node }
        run { id workflow { name } }
        moduleVersions { ref }
        datasets { name version dataset { fullName } columns { name label { level categories } } }
        loggedDatasets { name digest sourceType context }
      }
    }
  }
`);

export const REQUEST_PROMOTION = graphql(`
  mutation RequestModelPromotion($model: String!, $version: String!, $alias: String!, $reason: String!) {
    requestModelPromotion(model: $model, version: $version, alias: $alias, reason: $reason) { id state }
  }
`);

export const DECIDE_PROMOTION = graphql(`
  mutation DecideModelPromotion($id: ID!, $approve: Boolean!, $reason: String) {
    decideModelPromotion(id: $id, approve: $approve, reason: $reason) { id state }
  }
`);

export const ROLLBACK_ALIAS = graphql(`
  mutation RollbackModelAlias($model: String!, $alias: String!, $reason: String) {
    rollbackModelAlias(model: $model, alias: $alias, reason: $reason) { alias version { version } }
  }
`);

export type ModelData = NonNullable<ResultOf<typeof MODEL>['model']>;
export type VersionData = ModelData['versions'][number];
export type LineageData = NonNullable<NonNullable<ResultOf<typeof LINEAGE>['modelVersion']>['lineage']>;
