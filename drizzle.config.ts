// drizzle-kit: generates SQL migrations from server/db/tables into server/db/migrations (committed, never hand-edited).
import { defineConfig } from 'drizzle-kit';

export default defineConfig({
  dialect: 'postgresql',
  schema: './server/db/schema.ts',
  out: './server/db/migrations',
  strict: true,
});
