// The admin identity and its token at start-up: ATELIER_ADMIN_TOKEN, else the one saved in the data dir, else a
// new one; saved (owner-only) so `npm start` can print it and the CLI on the same machine can read it.
import { chmod, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { eq } from 'drizzle-orm';
import { audit } from '../audit/audit';
import { ADMIN_TOKEN_FILE } from '../config/defaults';
import type { Db } from '../db/client';
import { tokens } from '../db/tables/tokens';
import { ensureIdentity, hashToken, issueToken, mintToken } from './tokens';

/** Where the admin token is kept under the data dir. */
export const adminTokenFile = (dataDir: string) => path.join(dataDir, ADMIN_TOKEN_FILE);

/** Makes sure the admin identity exists and its token is live; returns the token. */
export async function seedAdmin(db: Db, options: { dataDir: string; token?: string }): Promise<string> {
  const admin = await ensureIdentity(db, { name: 'admin', kind: 'user', role: 'admin' });
  const file = adminTokenFile(options.dataDir);
  const token = options.token || (await readFile(file, 'utf8').catch(() => '')).trim() || mintToken();
  // A new admin token is a grant like any other: audited once, when it is first stored (not at each start).
  const [held] = await db
    .select({ id: tokens.id })
    .from(tokens)
    .where(eq(tokens.hash, hashToken(token)));
  if (!held)
    await db.transaction(async (tx) => {
      await issueToken(tx, admin.id, 'admin', { token });
      await audit(tx, {
        identity: null,
        action: 'identity.token.issue',
        decision: 'allow',
        subject: 'identity:admin',
        rule: 'the control plane seeds the admin token at start (ATELIER_ADMIN_TOKEN, or the data directory’s)',
        details: { role: 'admin' },
      });
    });
  await writeFile(file, `${token}\n`, { mode: 0o600 });
  await chmod(file, 0o600); // the mode above applies only to a new file
  return token;
}
