// The pure decisions of webhooks: which URLs the allowlist takes, which subscriptions take an event type, when a
// status is final, and how retries back off.
import { describe, expect, it } from 'vitest';
import { matchesPattern, urlProblem } from './allowlist';
import { subscribes } from './emit';
import { signWebhook } from './signature';
import { backoffMs, isPermanentStatus } from './worker';

describe('webhook allowlist', () => {
  const list = ['https://hooks.example.com', 'https://*.example.org', 'http://127.0.0.1:*', 'http://[::1]:8080'];
  it.each([
    ['https://hooks.example.com/a?b=c', true],
    ['https://hooks.example.com:443/a', true],
    ['https://hooks.example.com:8443/a', false],
    ['http://hooks.example.com/a', false],
    ['https://hooks.example.com.evil.net/', false],
    ['https://a.example.org/x', true],
    ['https://a.b.example.org/x', true],
    ['https://example.org/x', false],
    ['https://evilexample.org/x', false],
    ['http://127.0.0.1:9999/', true],
    ['http://127.0.0.1/', true],
    ['http://127.0.0.10:80/', false],
    ['http://[::1]:8080/', true],
    ['http://[::1]:8081/', false],
  ])('%s → %s', (url, allowed) => {
    expect(list.some((p) => matchesPattern(new URL(url), p))).toBe(allowed);
  });
  it('refuses everything while the list is empty, saying which variable to set', () => {
    expect(urlProblem('https://hooks.example.com/', [])).toContain('ATELIER_WEBHOOK_ALLOWLIST');
  });
  it('refuses credentials in the URL and other schemes', () => {
    expect(urlProblem('https://u:p@hooks.example.com/', list)).toContain('credentials');
    expect(urlProblem('ftp://hooks.example.com/', list)).toContain('not an http(s) URL');
  });
});

describe('webhook event matching', () => {
  it('takes exact names, prefixes and *', () => {
    expect(subscribes(['run.failed'], 'run.failed')).toBe(true);
    expect(subscribes(['run.failed'], 'run.succeeded')).toBe(false);
    expect(subscribes(['run.*'], 'run.cancelled')).toBe(true);
    expect(subscribes(['run.*'], 'runner.x')).toBe(false);
    expect(subscribes(['model.*'], 'model.version.registered')).toBe(true);
    expect(subscribes(['*'], 'model.alias.moved')).toBe(true);
  });
});

describe('webhook delivery', () => {
  it('treats 4xx but 408 and 429, and redirects, as final', () => {
    expect([400, 401, 404, 410, 422, 301, 307].every(isPermanentStatus)).toBe(true);
    expect([408, 429, 500, 502, 503].some(isPermanentStatus)).toBe(false);
  });
  it('doubles the delay with ±20 % jitter: 8 tries at 30 s span about an hour', () => {
    expect(backoffMs(1000, 1, () => 0.5)).toBe(1000);
    expect(backoffMs(1000, 3, () => 0.5)).toBe(4000);
    expect(backoffMs(1000, 3, () => 0)).toBe(3200);
    expect(backoffMs(1000, 3, () => 1)).toBe(4800);
    const total = [1, 2, 3, 4, 5, 6, 7].reduce((sum, round) => sum + backoffMs(30_000, round, () => 0.5), 0);
    expect(total / 60_000).toBeCloseTo(63.5, 1);
  });
  it('signs ID.TIMESTAMP.BODY', () => {
    // echo -n 'e1.1700000000.{}' | openssl dgst -sha256 -hmac whsec_test
    expect(signWebhook('whsec_test', 'e1', 1_700_000_000, '{}')).toBe('v1=a28cd58b854f38098939abc9bc10798f3b6c337975612841af32e608a574a61b');
  });
});
