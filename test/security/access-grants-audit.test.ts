// Every grant of access is audited (who, what, to whom, when), by the CLI and GraphQL alike: a user or service
// account created, a token issued, tokens revoked, the admin token seeded at start. No audit row holds the token (nor
// its hash, which is what a token is looked up by).
import { createHash } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestApp, type TestApp } from '../harness/app';
import { runCli } from '../harness/cli';

let t: TestApp;

interface Row {
  action: string;
  decision: string;
  subject: string;
  details: Record<string, unknown>;
  identity: { name: string } | null;
}
const auditLog = async (): Promise<Row[]> =>
  (await t.api.gql(`{ auditEvents(limit: 1000) { action decision subject details identity { name } } }`)).auditEvents;
const grants = async () => (await auditLog()).filter((r) => r.action.startsWith('identity.'));
const sha256 = (text: string) => createHash('sha256').update(text).digest('hex');

beforeAll(async () => {
  t = await startTestApp();
});
afterAll(async () => {
  await t?.app.stop();
});

describe('grants of access', () => {
  it('are audited, by the CLI and GraphQL, with who did it and to whom, never the token', async () => {
    const admin = { url: t.url, token: t.app.adminToken };
    const cli = async (args: string[]) => {
      const r = await runCli(admin, args);
      expect(r.code, `${args.join(' ')}: ${r.stderr}`).toBe(0);
      return r.stdout.trim();
    };
    const tokens = [t.app.adminToken];
    tokens.push(await cli(['user', 'create', 'alice', '--role', 'viewer', '--expires-in-days', '30']));
    tokens.push(await cli(['service-account', 'create', 'ci-bot', '--scopes', 'read:Run']));
    tokens.push(await cli(['service-account', 'token', 'ci-bot']));
    await cli(['service-account', 'revoke', 'ci-bot']);
    const { issueServiceToken } = await t.api.gql(`mutation { issueServiceToken(name: "ci-bot", expiresInDays: 7) { token } }`);
    tokens.push(issueServiceToken.token);

    const rows = await grants();
    const by = (action: string, subject: string) => rows.filter((r) => r.action === action && r.subject === subject);
    expect(by('identity.user.create', 'identity:alice')).toMatchObject([
      { decision: 'allow', identity: { name: 'admin' }, details: { kind: 'user', role: 'viewer' } },
    ]);
    expect(by('identity.service.create', 'identity:ci-bot')).toMatchObject([{ decision: 'allow', identity: { name: 'admin' } }]);
    expect(by('identity.token.issue', 'identity:alice')).toMatchObject([{ identity: { name: 'admin' }, details: { expiresAt: expect.any(String) } }]);
    expect(by('identity.token.issue', 'identity:ci-bot').map((r) => r.details.scopes)).toEqual(expect.arrayContaining([['read:Run'], null, null]));
    expect(by('identity.token.issue', 'identity:ci-bot')).toHaveLength(3);
    expect(by('identity.token.revoke', 'identity:ci-bot')).toMatchObject([{ identity: { name: 'admin' }, details: { revoked: 2 } }]);
    // The admin token the control plane seeded at its start: by nobody, once.
    expect(by('identity.token.issue', 'identity:admin')).toMatchObject([{ identity: null, details: { role: 'admin' } }]);

    const log = JSON.stringify(await auditLog());
    for (const token of tokens) {
      expect(log).not.toContain(token);
      expect(log).not.toContain(sha256(token));
    }
  });

  it('audits the team role its creator is given with a new team, as any other membership', async () => {
    await t.api.gql(`mutation { createTeam(name: "audited-team") { name } }`);
    const rows = (await auditLog()).filter((r) => r.subject === 'team:audited-team');
    expect(rows).toMatchObject([{ action: 'team.create', decision: 'allow', identity: { name: 'admin' }, details: { member: 'admin', role: 'admin' } }]);
  });

  it('grants nothing to a caller who is not an admin, and audits no grant for it', async () => {
    const { createUser } = await t.api.gql(`mutation { createUser(name: "vera", role: viewer) { token } }`);
    const vera = { url: t.url, token: createUser.token };
    const before = (await grants()).length;
    const r = await runCli(vera, ['user', 'create', 'mallory', '--role', 'admin']);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/FORBIDDEN|admin/i);
    const after = await grants();
    expect(after.filter((row) => row.decision === 'allow')).toHaveLength(before);
    expect(after.some((row) => row.subject === 'identity:mallory' && row.decision === 'allow')).toBe(false);
  });
});
