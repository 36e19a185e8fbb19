// searchRuns page after page, for `atelier run list --filter` and `atelier run search` asking for more runs than one
// page holds (the API's pages hold at most PAGE). Pages ordered by a metric that changes between them (a running
// run's `metrics.loss`) can repeat a run or skip one, as MLflow's can: a run moved past the cursor comes again, one
// moved before it never does. So runs are kept by id, once each, and paging stops at a page that adds none, never
// looping on a run that keeps coming back.
import type { Client } from './client';

/** The most runs one searchRuns page returns (Pothos' relay default). */
export const PAGE = 100;

interface Page<T> {
  searchRuns: { edges: { node: T }[]; pageInfo: { hasNextPage: boolean; endCursor: string | null } };
}

/** Up to `limit` runs matching `filter` in `orderBy` order, `fields` of each (with `id`), each run once. */
export async function searchAllPages<T extends { id: string }>(
  client: Pick<Client, 'request'>,
  fields: string,
  vars: { filter: string; orderBy: string[] },
  limit: number,
): Promise<T[]> {
  const seen = new Set<string>();
  const found: T[] = [];
  let after: string | null = null;
  while (found.length < limit) {
    const page: Page<T> = await client.request<Page<T>>(
      `query ($f: String, $o: [String!], $n: Int, $after: String) {
        searchRuns(filter: $f, orderBy: $o, first: $n, after: $after) { edges { node { ${fields} } } pageInfo { hasNextPage endCursor } }
      }`,
      { f: vars.filter, o: vars.orderBy, n: Math.min(PAGE, limit - found.length), after },
    );
    let added = 0;
    for (const { node } of page.searchRuns.edges) {
      if (seen.has(node.id) || found.length >= limit) continue;
      seen.add(node.id);
      found.push(node);
      added++;
    }
    if (!page.searchRuns.pageInfo.hasNextPage || !page.searchRuns.pageInfo.endCursor || added === 0) break;
    after = page.searchRuns.pageInfo.endCursor;
  }
  return found;
}
