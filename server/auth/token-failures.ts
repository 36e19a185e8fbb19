// Failed bearer tokens, counted per source (the request's peer, server/http/peer.ts; an IPv6 peer by its /64) within a
// window: past the limit, the source's dead tokens are refused with TOO_MANY_AUTH_FAILURES (429, Retry-After) until
// its window ends. A live token still passes: every token the control plane mints is 192 random bits, which no rate of
// guessing reaches, so refusing a right one buys no safety and would let one client lock out everyone who shares its
// address (a NAT, an office, a proxy not listed in ATELIER_TRUSTED_PROXIES). The exception is a secret a person chose
// (ATELIER_ADMIN_TOKEN, stored with tokens.chosen, wherever it is presented, whichever replica set it): it may be
// guessable, so from a locked-out source it is refused like a dead one, and the answer never tells a right guess of
// it from a wrong one (server/http/authenticate.ts).
// The failures are audited as one record per source per window, whose count is rewritten as it grows (at the limit
// and at each doubling), so a flood of guesses costs the audit table one row, not one per guess.
// The counts live in this replica's memory: each replica throttles on its own (a source spreading its guesses over
// N replicas gets N times the limit), and a restart forgets them.

import { isIP } from 'node:net';
import { eq } from 'drizzle-orm';
import type { Db } from '../db/client';
import { auditEvents } from '../db/tables/governance';
import { RetryLater } from '../errors';

export interface TokenFailureLimits {
  /** Failed tokens a source may present within one window; the next request is refused until the window ends. */
  limit: number;
  windowMs: number;
  /** Sources remembered at once; past it, ended windows are dropped first, then the oldest. */
  maxSources: number;
}

export const DEFAULT_TOKEN_FAILURE_LIMITS: TokenFailureLimits = { limit: 20, windowMs: 60_000, maxSources: 10_000 };

interface Window {
  start: number;
  count: number;
  /** The id of this window's audit record, once written (a promise, so concurrent failures write one). */
  record: Promise<string> | null;
  /** The count the record holds now. */
  recorded: number;
}

/** The refusal of a source past its limit; `retryAfterS` is the Retry-After an HTTP edge sends. */
export class TooManyAuthFailures extends RetryLater {
  constructor(retryAfterS: number) {
    super(
      'TOO_MANY_AUTH_FAILURES',
      `Too many requests with an unknown, expired or revoked bearer token from this address: retry in ${retryAfterS} s (Retry-After), with a valid token.`,
      retryAfterS,
    );
  }
}

/** The source a peer's address counts under: an IPv6 peer by its /64 (one host holds a whole /64). */
export function sourceOf(address: string | undefined | null): string {
  if (!address) return 'unknown';
  const v4 = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
  if (v4) return v4[1]!;
  if (isIP(address) !== 6) return address;
  const [head = '', tail = ''] = address.split('::');
  const left = head ? head.split(':') : [];
  const right = tail ? tail.split(':') : [];
  const groups = address.includes('::') ? [...left, ...Array<string>(8 - left.length - right.length).fill('0'), ...right] : left;
  return `${groups
    .slice(0, 4)
    .map((g) => g.toLowerCase().replace(/^0+(?=.)/, ''))
    .join(':')}::/64`;
}

export class TokenFailures {
  private readonly windows = new Map<string, Window>();

  constructor(
    private readonly db: Db,
    readonly limits: TokenFailureLimits = DEFAULT_TOKEN_FAILURE_LIMITS,
    private readonly now: () => number = Date.now,
  ) {}

  /** Throws TOO_MANY_AUTH_FAILURES while `source` is past its limit (the request counted as one more try). */
  assertMayTry(source: string): void {
    const window = this.current(source);
    if (!window || window.count < this.limits.limit) return;
    window.count++;
    this.recordGrowth(window);
    throw new TooManyAuthFailures(Math.max(1, Math.ceil((window.start + this.limits.windowMs - this.now()) / 1000)));
  }

  /** Counts a failed token from `source`; the first of a window writes its audit record before this returns. */
  async failed(source: string): Promise<void> {
    let window = this.current(source);
    if (!window) {
      this.makeRoom();
      window = { start: this.now(), count: 0, record: null, recorded: 0 };
      this.windows.set(source, window);
    }
    window.count++;
    if (!window.record) {
      window.recorded = window.count;
      window.record = this.insert(source, window);
      await window.record;
    } else this.recordGrowth(window);
  }

  private current(source: string): Window | undefined {
    const window = this.windows.get(source);
    if (window && this.now() >= window.start + this.limits.windowMs) {
      this.windows.delete(source);
      this.rewrite(window, true);
      return undefined;
    }
    return window;
  }

  /** Rewrites the record's count at the limit and at each doubling past it: a few writes per window, however many tries. */
  private recordGrowth(window: Window): void {
    if (window.count === this.limits.limit || (window.count > this.limits.limit && window.count >= window.recorded * 2)) this.rewrite(window, false);
  }

  private rewrite(window: Window, final: boolean): void {
    if (!window.record || window.recorded === window.count) return;
    window.recorded = window.count;
    const count = window.count;
    void window.record
      .then((id) =>
        this.db
          .update(auditEvents)
          .set({ details: this.details(window, count, final) })
          .where(eq(auditEvents.id, id)),
      )
      .catch(() => undefined); // the database unreachable: the record keeps its last count
  }

  private async insert(source: string, window: Window): Promise<string> {
    const [row] = await this.db
      .insert(auditEvents)
      .values({
        identityId: null,
        action: 'auth.token',
        decision: 'deny',
        subject: `source:${source}`,
        rule: 'a bearer token that is unknown, expired or revoked',
        details: this.details(window, window.count, false),
      })
      .returning({ id: auditEvents.id });
    return row!.id;
  }

  private details(window: Window, failures: number, final: boolean) {
    return {
      failures,
      windowStart: new Date(window.start).toISOString(),
      windowSeconds: this.limits.windowMs / 1000,
      limit: this.limits.limit,
      windowEnded: final,
    };
  }

  private makeRoom(): void {
    if (this.windows.size < this.limits.maxSources) return;
    for (const source of [...this.windows.keys()]) this.current(source);
    while (this.windows.size >= this.limits.maxSources) {
      const [oldest, window] = this.windows.entries().next().value as [string, Window];
      this.windows.delete(oldest);
      this.rewrite(window, true);
    }
  }
}

// One per database handle, i.e. per replica (a replica's routes and GraphQL share its handle).
const perDb = new WeakMap<Db, TokenFailures>();

/** This replica's failure counts. */
export function tokenFailuresOf(db: Db): TokenFailures {
  let failures = perDb.get(db);
  if (!failures) perDb.set(db, (failures = new TokenFailures(db)));
  return failures;
}
