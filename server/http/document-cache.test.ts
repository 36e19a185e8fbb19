import { parse } from 'graphql';
import { expect, it } from 'vitest';
import { boundedDocumentCache, MAX_CACHED_DOCUMENT_CHARS, MAX_CACHED_DOCUMENTS } from './document-cache';

it('keeps short documents, the most recent first, and never a long one', () => {
  const cache = boundedDocumentCache().documentCache!;
  const short = '{ __typename }';
  const document = parse(short);
  cache.set(short, document);
  expect(cache.get(short)).toBe(document);
  const long = `{ a(s: "${'x'.repeat(MAX_CACHED_DOCUMENT_CHARS)}") }`;
  cache.set(long, parse(long));
  expect(cache.get(long)).toBeUndefined();
  for (let i = 0; i < MAX_CACHED_DOCUMENTS; i++) cache.set(`{ f${i} }`, document);
  expect(cache.get(short)).toBeUndefined(); // the oldest, evicted
  expect(cache.get(`{ f${MAX_CACHED_DOCUMENTS - 1} }`)).toBe(document);
});
