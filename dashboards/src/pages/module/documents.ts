// The module page's GraphQL documents: the module with its tags, tag history and versions, and the tag moves.
import { graphql, type ResultOf } from '../../graphql';

export const MODULE = graphql(`
  query ModulePage($name: String!) {
    module(name: $name) {
      id
      fullName
      description
      createdAt
      owner { name }
      usage { runs lastUsedAt }
      viewerCan { promote { allowed reason } }
      tags { tag updatedAt version { id version } viewerCan { rollback { allowed reason } } }
      tagHistory(limit: 30) { tag action reason at from { version } to { version } movedBy { name } }
      versions(limit: 50) {
        id
        version
        ref
        digest
        createdAt
        sizeBytes
        runtime
        entrypoint
        parameterSchema
        source
        publishedBy { name }
        deprecated
        deprecationReason
        testResult { passed exitCode durationMs command }
        usage { runs }
        manifest
        runs(limit: 5) { id status createdAt workflow { name } }
      }
    }
  }
`);

export const SET_TAG = graphql(`
  mutation PromoteTag($module: String!, $tag: String!, $version: String!, $reason: String, $force: Boolean) {
    setModuleTag(module: $module, tag: $tag, version: $version, reason: $reason, force: $force) { tag version { version } }
  }
`);

export const ROLLBACK_TAG = graphql(`
  mutation RollbackTag($module: String!, $tag: String!) {
    rollbackModuleTag(module: $module, tag: $tag) { tag version { version } }
  }
`);

export type ModuleData = NonNullable<ResultOf<typeof MODULE>['module']>;
