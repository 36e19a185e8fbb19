// The dashboards' typed operations come from src/graphql-env.d.ts, generated from the committed schema.graphql
// and committed itself (CI has no generation step): fail when it is out of date.
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { expect, it } from 'vitest';

const root = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', '..');

it('dashboards/src/graphql-env.d.ts matches schema.graphql (else run `npm run codegen:dashboards`)', async () => {
  const dir = await mkdtemp(path.join(tmpdir(), 'atelier-codegen-'));
  try {
    const output = path.join(dir, 'graphql-env.d.ts');
    const cli = path.join(root, 'node_modules', 'gql.tada', 'bin', 'cli.js');
    await promisify(execFile)(process.execPath, [cli, 'generate-output', '--tsconfig', path.join(root, 'dashboards', 'tsconfig.json'), '--output', output], {
      cwd: root,
    });
    const [fresh, committed] = await Promise.all([readFile(output, 'utf8'), readFile(path.join(root, 'dashboards', 'src', 'graphql-env.d.ts'), 'utf8')]);
    expect(committed === fresh, 'dashboards/src/graphql-env.d.ts is out of date: run `npm run codegen:dashboards`').toBe(true);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
