// The dashboards' live connection's wait between tries to connect again (dashboards/src/lib/reconnect.ts): it grows,
// but is bounded, so a dashboard left open through a long outage is live again soon after the server is back
// (graphql-ws's own wait doubled without a bound: minutes after a few minutes' outage).
import { readFileSync } from 'node:fs';
import { expect, it } from 'vitest';
import { RECONNECT_CAP_MS, RECONNECT_SPREAD_MS, reconnectDelayMs } from '../../dashboards/src/lib/reconnect';

it('grows from half a second and never waits past the cap plus its spread, however many tries failed', () => {
  expect(reconnectDelayMs(0, 0)).toBe(500);
  expect(reconnectDelayMs(1, 0)).toBeGreaterThan(reconnectDelayMs(0, 0));
  for (const retries of [5, 10, 20, 100, 10_000])
    for (const random of [0, 0.5, 0.999]) expect(reconnectDelayMs(retries, random)).toBeLessThan(RECONNECT_CAP_MS + RECONNECT_SPREAD_MS);
});

it('spreads the dashboards of a restarted server over a second', () => {
  expect(reconnectDelayMs(0, 0.999) - reconnectDelayMs(0, 0)).toBeGreaterThan(900);
});

it('is the wait the dashboards’ graphql-ws client uses', () => {
  const client = readFileSync(new URL('../../dashboards/src/api/client.ts', import.meta.url), 'utf8');
  expect(client).toMatch(/retryWait: \(retries\) => new Promise\(\(resolve\) => setTimeout\(resolve, reconnectDelayMs\(retries\)\)\)/);
});
