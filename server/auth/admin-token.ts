// The admin identity and its token at start-up: ATELIER_ADMIN_TOKEN, else the one saved in the data dir, else a
// new one; saved (owner-only) so `npm start` can print it and the CLI on the same machine can read it.
import { chmod, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { eq } from 'drizzle-orm';
import { audit } from '../audit/audit';
import { ADMIN_TOKEN_FILE } from '../config/defaults';
import { ConfigError } from '../config/parse';
import type { Db } from '../db/client';
import { identities } from '../db/tables/identities';
import { tokens } from '../db/tables/tokens';
import { ensureIdentity, hashToken, issueToken, mintToken } from './tokens';

/** Where the admin token is kept under the data dir. */
export const adminTokenFile = (dataDir: string) => path.join(dataDir, ADMIN_TOKEN_FILE);

/**
 * Makes sure the admin identity exists and its token is live; returns the token. ATELIER_ADMIN_TOKEN naming a token
 * that no longer works as the admin's (revoked, expired, another identity's) refuses the start with a ConfigError:
 * the admin would otherwise be handed a token every request refuses. The saved one revoked (a leak dealt with through
 * `revokeToken`) is replaced by a new one, said in the log: the file is only a convenience for this machine.
 */
export async function seedAdmin(db: Db, options: { dataDir: string; token?: string; log?: (message: string) => void }): Promise<string> {
  const admin = await ensureIdentity(db, { name: 'admin', kind: 'user', role: 'admin' });
  const file = adminTokenFile(options.dataDir);
  const saved = options.token ? '' : (await readFile(file, 'utf8').catch(() => '')).trim();
  let token = options.token || saved || mintToken();
  let [held] = await heldToken(db, token);
  if (held && options.token) {
    const unusable = held.identityId !== admin.id ? `is ${held.owner}’s, not the admin’s` : whyDead(held);
    if (unusable)
      throw new ConfigError(
        `ATELIER_ADMIN_TOKEN names a token that ${unusable}, so every request with it would be refused: set a new one (openssl rand -base64 32), or unset it and use the token saved in ${file} (one is minted there if it is gone or no longer works).`,
      );
  } else if (held && (held.identityId !== admin.id || whyDead(held))) {
    const why = held.identityId !== admin.id ? `is ${held.owner}’s, not the admin’s` : whyDead(held);
    options.log?.(`warning: the admin token saved in ${file} ${why}; a new one was minted and saved there`);
    token = mintToken();
    held = undefined;
  }
  // A new admin token is a grant like any other: audited once, when it is first stored (not at each start).
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

const heldToken = (db: Db, token: string) =>
  db
    .select({ identityId: tokens.identityId, owner: identities.name, revokedAt: tokens.revokedAt, expiresAt: tokens.expiresAt })
    .from(tokens)
    .innerJoin(identities, eq(identities.id, tokens.identityId))
    .where(eq(tokens.hash, hashToken(token)));

/** Why a stored token no longer authenticates, or null while it does. */
function whyDead(held: { revokedAt: Date | null; expiresAt: Date | null }): string | null {
  if (held.revokedAt) return `was revoked at ${held.revokedAt.toISOString()}`;
  if (held.expiresAt && held.expiresAt <= new Date()) return `expired at ${held.expiresAt.toISOString()}`;
  return null;
}
