// Paging through searchRuns from the CLI: a run that a changing metric brings back on a later page is listed once, and
// a server that keeps answering the same runs ends the paging instead of looping.
import { describe, expect, it } from 'vitest';
import { PAGE, searchAllPages } from './search-pages';

type Run = { id: string };
/** A client answering each request with the next of `pages` (ids), its cursor the page's number. */
function pagesOf(pages: string[][], hasNext = (i: number) => i < pages.length - 1) {
  const asked: { n: number; after: string | null }[] = [];
  return {
    asked,
    async request<T>(_query: string, variables?: Record<string, unknown>): Promise<T> {
      const after = (variables?.after as string | null) ?? null;
      asked.push({ n: variables?.n as number, after });
      const i = after === null ? 0 : Number(after) + 1;
      const ids = pages[Math.min(i, pages.length - 1)]!;
      return { searchRuns: { edges: ids.map((id) => ({ node: { id } })), pageInfo: { hasNextPage: hasNext(i), endCursor: String(i) } } } as T;
    },
  };
}

describe('searchAllPages', () => {
  it('lists a run that comes again on a later page once', async () => {
    const first = Array.from({ length: PAGE }, (_, i) => `r${i}`);
    const second = ['r99', 'r100', 'r101']; // r99's metric moved past the cursor between the pages
    const client = pagesOf([first, second]);
    const runs = await searchAllPages<Run>(client, 'id', { filter: '', orderBy: ['metrics.loss'] }, 150);
    expect(runs.map((r) => r.id)).toEqual([...first, 'r100', 'r101']);
    expect(client.asked).toEqual([
      { n: PAGE, after: null },
      { n: 50, after: '0' },
    ]);
  });

  it('stops at a page that adds no run, though the server says there are more', async () => {
    const client = pagesOf(
      [
        ['a', 'b'],
        ['b', 'a'],
      ],
      () => true,
    );
    const runs = await searchAllPages<Run>(client, 'id', { filter: '', orderBy: [] }, 500);
    expect(runs.map((r) => r.id)).toEqual(['a', 'b']);
    expect(client.asked).toHaveLength(2);
  });

  it('asks one page for a limit within it', async () => {
    const client = pagesOf([['a', 'b', 'c']], () => true);
    expect((await searchAllPages<Run>(client, 'id', { filter: '', orderBy: [] }, 2)).map((r) => r.id)).toEqual(['a', 'b']);
    expect(client.asked).toEqual([{ n: 2, after: null }]);
  });
});
