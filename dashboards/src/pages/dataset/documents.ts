// The dataset page's GraphQL documents.
import { graphql, type ResultOf } from '../../graphql';

export const DATASET = graphql(`
  query DatasetPage($name: String!) {
    dataset(name: $name) {
      id
      fullName
      description
      domain
      createdAt
      columns { name type needsClassification label { level categories } computedLabel { level categories } }
      versions { version digest createdAt columns { name type } producedBy { id node run { id workflow { name } } moduleVersion { ref manifest } } }
      catalog { published publishedAt publishedBy { name } blockers }
      viewerCan { manageCatalog { allowed reason } }
    }
  }
`);

export type DatasetData = NonNullable<ResultOf<typeof DATASET>['dataset']>;

export const PREVIEW = graphql(`
  query DatasetPreview($name: String!, $groupBy: [String!], $limit: Int) {
    datasetPreview(name: $name, groupBy: $groupBy, limit: $limit) { columns withheld rows groups { key count } }
  }
`);

export const PUBLISH = graphql(`
  mutation PublishDataset($name: String!) {
    publishDatasetToCatalog(name: $name) { id catalog { published publishedAt publishedBy { name } blockers } }
  }
`);

export const WITHDRAW = graphql(`
  mutation WithdrawDataset($name: String!, $reason: String) {
    withdrawDatasetFromCatalog(name: $name, reason: $reason) { id catalog { published publishedAt publishedBy { name } blockers } }
  }
`);

export const DECLASSIFICATIONS = graphql(`
  query PendingDeclassifications {
    declassifications(pending: true) {
      id
      dataset
      column
      reason
      state
      createdAt
      from { level categories }
      to { level categories }
      requestedBy { name }
      viewerCan { decide { allowed reason } }
    }
  }
`);

export const DECIDE = graphql(`
  mutation DecideDeclassification($id: ID!, $approve: Boolean!) {
    decideDeclassification(id: $id, approve: $approve) { id state decidedBy { name } }
  }
`);
