// yoga's cache of parsed documents (and of parse errors), keyed by each document's text: bounded by what it holds, not
// only by how many. yoga's default keeps 1,024 of any size for an hour, and a document may be as long as a request
// (ATELIER_MAX_REQUEST_KB): one long string literal is a single token, so 1,024 different 4 MB documents held ~8 GB.
// Our clients send a few short documents again and again; a long one is parsed each time it comes, as it is the
// first time, and not kept. Each entry still lasts at most an hour from when it was kept, as yoga's did; its age is
// read from the clock on each lookup, where yoga's lru-cache (ttlResolution 1 ms) set a timer on every lookup more
// than a millisecond after the last one, which is every request of a control plane that is not flooded.
import type { DocumentNode } from 'graphql';
import type { YogaServerOptions } from 'graphql-yoga';

/** The longest document text kept parsed; longer ones are parsed on every request. */
export const MAX_CACHED_DOCUMENT_CHARS = 16 * 1024;
/** How many documents (and, apart, parse errors) are kept. */
export const MAX_CACHED_DOCUMENTS = 512;
/** How long an entry is kept after it was set (yoga's default). */
export const CACHED_DOCUMENT_TTL_MS = 60 * 60 * 1000;

type Options = Exclude<YogaServerOptions<object, object>['parserAndValidationCache'], boolean | undefined>;

/** A least-recently-used map (a Map's order is its insertion order: a hit is moved to the end) with each entry's age. */
function boundedCache<T extends object>() {
  const entries = new Map<string, { value: T; at: number }>();
  return {
    get(text: string): T | undefined {
      const entry = entries.get(text);
      if (!entry) return undefined;
      entries.delete(text);
      if (performance.now() - entry.at > CACHED_DOCUMENT_TTL_MS) return undefined;
      entries.set(text, entry);
      return entry.value;
    },
    set(text: string, value: T) {
      if (text.length > MAX_CACHED_DOCUMENT_CHARS) return;
      entries.delete(text);
      entries.set(text, { value, at: performance.now() });
      if (entries.size > MAX_CACHED_DOCUMENTS) entries.delete(entries.keys().next().value!);
    },
  };
}

/** yoga's `parserAndValidationCache`: documents and parse errors kept only for texts of at most 16 KiB, for an hour. */
export function boundedDocumentCache(): Options {
  return { documentCache: boundedCache<DocumentNode>(), errorCache: boundedCache<object>() };
}
