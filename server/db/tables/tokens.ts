// Bearer tokens, stored only as SHA-256 hashes; expiring and revocable.
import { boolean, index, integer, pgTable, text, uuid } from 'drizzle-orm/pg-core';
import { at, createdAt, id } from './columns';
import { identities } from './identities';

export const tokens = pgTable(
  'tokens',
  {
    id: id(),
    identityId: uuid('identity_id')
      .notNull()
      .references(() => identities.id, { onDelete: 'cascade' }),
    name: text('name').notNull(),
    hash: text('hash').notNull().unique(),
    createdAt: createdAt(),
    expiresAt: at('expires_at'),
    revokedAt: at('revoked_at'),
    /** `action:Subject` pairs narrowing what the token may do (see server/auth/ability.ts); null: all its identity may. */
    scopes: text('scopes').array(),
    /**
     * A task's own token (MLFLOW_TRACKING_TOKEN inside a task): it may log into that task only, and only while that
     * attempt runs. Null: an ordinary token.
     */
    taskId: uuid('task_id'),
    taskAttempt: integer('task_attempt'),
    /**
     * A secret a person chose (ATELIER_ADMIN_TOKEN), not 192 random bits the control plane minted: it may be guessable,
     * so an address locked out for failed tokens is refused it too (server/auth/token-failures.ts), and it lives only
     * while the configuration names it (server/auth/admin-token.ts).
     */
    chosen: boolean('chosen').notNull().default(false),
  },
  (t) => [index('tokens_identity_idx').on(t.identityId)],
);

export type Token = typeof tokens.$inferSelect;
