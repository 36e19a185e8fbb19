// A list sent as one array literal (server/db/arrays.ts) reads back as it was sent: ids, numbers, and text with the
// quotes and backslashes the literal must escape (ids, which have none, are quoted without the escaping pass).
import { sql } from 'drizzle-orm';
import { expect, it } from 'vitest';
import { arrayOf } from '../../server/db/arrays';
import { openDatabase, queryRows } from '../../server/db/client';
import { appDatabase } from '../harness/shared-postgres';

it('reads a text list back as sent, quotes and backslashes included', async () => {
  const database = await appDatabase();
  const open = await openDatabase({ url: database.url, dataDir: '' });
  try {
    const texts = ['plain', 'a "quoted" word', 'back\\slash', '\\"both\\"', '', 'comma, {brace}', 'NULL'];
    const ids = [crypto.randomUUID(), crypto.randomUUID()];
    const [row] = await queryRows<{ texts: string[]; ids: string[]; numbers: number[] }>(
      open.db,
      sql`select ${arrayOf(texts, 'text')} as texts, ${arrayOf(ids, 'uuid')} as ids, ${arrayOf([1, -2, 30], 'int')} as numbers`,
    );
    expect(row).toEqual({ texts, ids, numbers: [1, -2, 30] });
  } finally {
    await open.close();
    await database.drop();
  }
});
