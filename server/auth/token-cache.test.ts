// The token cache's rules alone, on a clock of the test's: one lookup per token at once, a change forgets at once and
// keeps a lookup that read before it from being remembered, the TTL counts from the lookup's start, expiry on every hit,
// nothing served from memory while changes may go unheard, and everything forgotten once they are heard again.
import { describe, expect, it } from 'vitest';
import type { Identity } from '../db/tables/identities';
import { createTokenCache, type TokenSession } from './token-cache';

const identity = (id: string) => ({ id, name: id, kind: 'service', role: 'viewer' }) as Identity;
const session = (id: string, expiresAt: Date | null = null): TokenSession => ({
  identity: identity(id),
  scopes: null,
  chosen: false,
  grants: { domains: [] },
  task: null,
  expiresAt,
});

/** A lookup the test answers when it likes. */
function deferred() {
  let answer!: (value: TokenSession | null) => void;
  const promise = new Promise<TokenSession | null>((resolve) => (answer = resolve));
  return { promise, answer };
}

describe('createTokenCache', () => {
  it('looks a token up once for every request made while its lookup runs, then answers from memory', async () => {
    const cache = createTokenCache({ ttlMs: 1_000, now: () => 0 });
    const lookup = deferred();
    const asked = Array.from({ length: 5 }, () => cache.session('h', () => lookup.promise));
    lookup.answer(session('x'));
    expect(new Set(await Promise.all(asked)).size).toBe(1);
    await cache.session('h', () => Promise.resolve(null));
    expect(cache.loads).toBe(1);
  });

  it('forgets a changed identity at once, and does not remember a lookup that began before the change', async () => {
    const cache = createTokenCache({ ttlMs: 1_000, now: () => 0 });
    await cache.session('h', () => Promise.resolve(session('x')));
    const stale = deferred();
    const racing = cache.session('other', () => stale.promise);
    await cache.changed({ identities: ['x'] });
    // A request after the change does not join the lookup begun before it.
    const after = cache.session('other', () => Promise.resolve(session('y')));
    stale.answer(session('y'));
    await Promise.all([racing, after]);
    expect(cache.loads).toBe(3);
    expect(await cache.session('h', () => Promise.resolve(null))).toBeNull();
  });

  it('keeps a session for the TTL from when its lookup began, and never past its token’s expiry', async () => {
    let now = 0;
    const cache = createTokenCache({ ttlMs: 1_000, now: () => now });
    const slow = deferred();
    const first = cache.session('h', () => slow.promise);
    now = 400;
    slow.answer(session('x', new Date(1_500)));
    await first;
    now = 999;
    expect(await cache.session('h', () => Promise.resolve(null))).not.toBeNull();
    now = 1_000;
    expect(await cache.session('h', () => Promise.resolve(session('x', new Date(1_500))))).not.toBeNull();
    expect(cache.loads).toBe(2);
    now = 1_500;
    expect(await cache.session('h', () => Promise.resolve(null))).toBeNull();
  });

  it('looks every request up with a TTL of 0, and a re-check (fresh) looks up whatever is remembered', async () => {
    const off = createTokenCache({ ttlMs: 0, now: () => 0 });
    await Promise.all([off.session('h', () => Promise.resolve(session('x'))), off.session('h', () => Promise.resolve(session('x')))]);
    expect(off.loads).toBe(2);
    const on = createTokenCache({ ttlMs: 1_000, now: () => 0 });
    await on.session('h', () => Promise.resolve(session('x')));
    expect(await on.session('h', () => Promise.resolve(null), { fresh: true })).toBeNull();
    expect(await on.session('h', () => Promise.resolve(null))).toBeNull();
    expect(on.loads).toBe(3);
  });

  it('serves nothing from memory while changes may go unheard, and forgets everything once they are heard again', async () => {
    const cache = createTokenCache({ ttlMs: 1_000, now: () => 0 });
    const told: unknown[] = [];
    cache.onChange((change, local) => void told.push({ change, local }));
    await cache.session('h', () => Promise.resolve(session('x')));
    const racing = deferred();
    const before = cache.session('other', () => racing.promise);
    cache.watching(false);
    // Looked up every time, joined by nothing, remembered never.
    await Promise.all([cache.session('h', () => Promise.resolve(session('x'))), cache.session('h', () => Promise.resolve(session('x')))]);
    expect(cache.loads).toBe(4);
    cache.watching(true);
    racing.answer(session('y'));
    await before;
    expect(told).toEqual([{ change: { identities: [], all: true }, local: false }]);
    // Nothing from before is remembered: neither the session nor the lookup that ran across the gap.
    await cache.session('h', () => Promise.resolve(session('x')));
    await cache.session('other', () => Promise.resolve(session('y')));
    expect(cache.loads).toBe(6);
    await cache.session('h', () => Promise.resolve(null));
    expect(cache.loads).toBe(6);
  });

  it('forgets every identity for a change of all', async () => {
    const cache = createTokenCache({ ttlMs: 1_000, now: () => 0 });
    await cache.session('h', () => Promise.resolve(session('x')));
    cache.heard({ identities: [], all: true });
    expect(await cache.session('h', () => Promise.resolve(null))).toBeNull();
  });
});
