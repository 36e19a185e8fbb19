// Rotating a token without downtime: a new one is issued and both work through the overlap, then the old one alone is
// revoked (revokeToken), the identity's new token staying live. The same for the admin token of ATELIER_ADMIN_TOKEN,
// which no API could revoke before: a leaked one worked for ever.
import { afterAll, beforeAll, expect, it } from 'vitest';
import { startTestApp, type TestApp } from '../harness/app';
import { apiClient } from '../harness/client';

let t: TestApp;
beforeAll(async () => {
  t = await startTestApp({ ATELIER_ADMIN_TOKEN: 'atl_the-first-admin-token-of-this-test' });
});
afterAll(async () => t?.stop());

const VIEWER = `{ viewer { name } }`;
const works = async (token: string) => (await apiClient(t.url, token).raw(VIEWER)).errors === undefined;

it('revokes the old service token after the overlap, and only it', async () => {
  const { createServiceAccount } = await t.api.gql(`mutation { createServiceAccount(name: "ci") { token } }`);
  const { issueServiceToken } = await t.api.gql(`mutation { issueServiceToken(name: "ci") { token } }`);
  const [old, fresh] = [createServiceAccount.token as string, issueServiceToken.token as string];
  expect([await works(old), await works(fresh)]).toEqual([true, true]); // the overlap

  expect((await t.api.gql(`mutation ($k: String!) { revokeToken(token: $k) }`, { k: old })).revokeToken).toBe(true);
  expect([await works(old), await works(fresh)]).toEqual([false, true]);
  // Again: already revoked, nothing to do; a text no token has is NOT_FOUND (a paste cut short says so).
  expect((await t.api.gql(`mutation ($k: String!) { revokeToken(token: $k) }`, { k: old })).revokeToken).toBe(false);
  const missing = await t.api.raw(`mutation ($k: String!) { revokeToken(token: $k) }`, { k: old.slice(0, -3) });
  expect(missing.errors?.[0]?.extensions?.code).toBe('NOT_FOUND');
  // Only admins revoke: the service account's own (member) token may not.
  const refused = await apiClient(t.url, fresh).raw(`mutation ($k: String!) { revokeToken(token: $k) }`, { k: t.app.adminToken });
  expect(refused.errors?.[0]?.extensions?.code).toBe('FORBIDDEN');
  expect(await works(t.app.adminToken)).toBe(true);
});

it('revokes a leaked admin token (the one ATELIER_ADMIN_TOKEN set) once another admin exists', async () => {
  const { createUser } = await t.api.gql(`mutation { createUser(name: "ops", role: admin) { token } }`);
  const ops = apiClient(t.url, createUser.token);
  expect((await ops.gql(`mutation ($k: String!) { revokeToken(token: $k) }`, { k: t.app.adminToken })).revokeToken).toBe(true);
  expect(await works(t.app.adminToken)).toBe(false);
  expect(await works(createUser.token)).toBe(true);
});
