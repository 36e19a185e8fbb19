// `atelier deployer new`: the skeleton it writes passes the deployer contract as written. The skeleton goes into a
// folder inside the repository (so its relative imports of plugins/ are the ones an author gets), and its own
// contract test file is loaded here, registering the suite.
import { rm } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { scaffoldDeployer } from '../../server/cli/deployer-scaffold';

const root = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const parent = path.join(root, '.tmp', `deployer-scaffold-${process.pid}`);
const files = await scaffoldDeployer('scaffolded', parent);
await import(files[1]!);

afterAll(() => rm(parent, { recursive: true, force: true }));

describe('atelier deployer new', () => {
  it('writes index.ts, a contract test and a README', () => {
    expect(files.map((f) => path.relative(parent, f))).toEqual(['scaffolded/index.ts', 'scaffolded/scaffolded.test.ts', 'scaffolded/README.md']);
  });

  it('refuses a bad name and an existing folder, saying what to do', async () => {
    await expect(scaffoldDeployer('Bad_Name', parent)).rejects.toThrow(/lowercase letters, digits and dashes/);
    await expect(scaffoldDeployer('scaffolded', parent)).rejects.toThrow(/already exists: choose another NAME or --dir/);
  });
});
