// yoga's cache of parsed documents (and of parse errors), keyed by each document's text: bounded by what it holds, not
// only by how many. yoga's default keeps 1,024 of any size for an hour, and a document may be as long as a request
// (ATELIER_MAX_REQUEST_KB): one long string literal is a single token, so 1,024 different 4 MB documents held ~8 GB.
// Our clients send a few short documents again and again; a long one is parsed each time it comes, as it is the
// first time, and not kept.
import type { DocumentNode } from 'graphql';
import { createLRUCache, type YogaServerOptions } from 'graphql-yoga';

/** The longest document text kept parsed; longer ones are parsed on every request. */
export const MAX_CACHED_DOCUMENT_CHARS = 16 * 1024;
/** How many documents (and, apart, parse errors) are kept. */
export const MAX_CACHED_DOCUMENTS = 512;

type Options = Exclude<YogaServerOptions<object, object>['parserAndValidationCache'], boolean | undefined>;

function boundedCache<T extends object>() {
  const lru = createLRUCache<T>({ max: MAX_CACHED_DOCUMENTS });
  return {
    get: (text: string) => lru.get(text),
    set(text: string, value: T) {
      if (text.length <= MAX_CACHED_DOCUMENT_CHARS) lru.set(text, value);
    },
  };
}

/** yoga's `parserAndValidationCache`: documents and parse errors kept only for texts of at most 16 KiB. */
export function boundedDocumentCache(): Options {
  return { documentCache: boundedCache<DocumentNode>(), errorCache: boundedCache<object>() };
}
