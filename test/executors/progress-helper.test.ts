// The Node progress helper has one source, executors/local/progress.js. Example modules carry a copy because each
// module directory is packed and shipped on its own (an import reaching outside it would not be in the archive);
// this check keeps every copy the source to the byte, under its one-line note.
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it } from 'vitest';

const root = path.resolve(import.meta.dirname, '../..');
const SOURCE = 'executors/local/progress.js';
const COPY_NAME = 'atelier-progress.mjs';
const NOTE = `// Copied verbatim from ${SOURCE}: each module is packed on its own, so it carries its copy.\n`;

async function copiesUnder(dir: string): Promise<string[]> {
  const found: string[] = [];
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory() && entry.name !== 'node_modules') found.push(...(await copiesUnder(full)));
    else if (entry.name === COPY_NAME) found.push(full);
  }
  return found;
}

describe('the progress helper', () => {
  it('ships in example modules as exact copies of its one source', async () => {
    const source = await readFile(path.join(root, SOURCE), 'utf8');
    const copies = await copiesUnder(path.join(root, 'examples'));
    expect(copies.length, `copies of ${SOURCE} named ${COPY_NAME} under examples/`).toBeGreaterThan(0);
    for (const copy of copies) {
      const text = await readFile(copy, 'utf8');
      expect(text, `${path.relative(root, copy)} drifted from ${SOURCE}: copy it again (with its first-line note)`).toBe(NOTE + source);
    }
  });
});
