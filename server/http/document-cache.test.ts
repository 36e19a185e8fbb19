import { parse } from 'graphql';
import { expect, it, vi } from 'vitest';
import { boundedDocumentCache, CACHED_DOCUMENT_TTL_MS, MAX_CACHED_DOCUMENT_CHARS, MAX_CACHED_DOCUMENTS } from './document-cache';

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

it('forgets a document an hour after keeping it', () => {
  const cache = boundedDocumentCache().documentCache!;
  const text = '{ __typename }';
  const document = parse(text);
  let now = 1_000;
  const clock = vi.spyOn(performance, 'now').mockImplementation(() => now);
  try {
    cache.set(text, document);
    now += CACHED_DOCUMENT_TTL_MS;
    expect(cache.get(text)).toBe(document);
    now += 1;
    expect(cache.get(text)).toBeUndefined();
  } finally {
    clock.mockRestore();
  }
});

it('sets no timer to look a document up (yoga’s lru-cache set one on every lookup a millisecond after the last)', () => {
  const cache = boundedDocumentCache().documentCache!;
  const text = '{ __typename }';
  const document = parse(text);
  cache.set(text, document);
  const timers = vi.spyOn(globalThis, 'setTimeout');
  try {
    expect(cache.get(text)).toBe(document);
    expect(timers).not.toHaveBeenCalled();
  } finally {
    timers.mockRestore();
  }
});
