import { chmod, mkdir, mkdtemp, utimes, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { gzipSync } from 'node:zlib';
import * as tar from 'tar';
import { describe, expect, it } from 'vitest';
import { listModuleFiles, MAX_ARCHIVE_ENTRIES, packDirectory, readArchiveFile } from './archive';
import { createFileObjectStore, sha256 } from './store';

async function moduleDir(files: Record<string, string>) {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'atelier-archive-'));
  for (const [name, body] of Object.entries(files)) {
    await mkdir(path.dirname(path.join(dir, name)), { recursive: true });
    await writeFile(path.join(dir, name), body);
  }
  return dir;
}

describe('module archives', () => {
  it('are byte-for-byte reproducible whatever the timestamps and creation order', async () => {
    const a = await moduleDir({ 'atelier.module.yaml': 'x', 'src/b.py': 'b', 'src/a.py': 'a' });
    const b = await moduleDir({ 'src/a.py': 'a', 'src/b.py': 'b', 'atelier.module.yaml': 'x' });
    await utimes(path.join(b, 'src/a.py'), new Date(2001, 1, 1), new Date(2001, 1, 1));
    expect(sha256(await packDirectory(a))).toBe(sha256(await packDirectory(b)));
    await chmod(path.join(b, 'src/a.py'), 0o755);
    expect(sha256(await packDirectory(a))).not.toBe(sha256(await packDirectory(b)));
  });

  it('honours .atelierignore and always skips .git and node_modules', async () => {
    const dir = await moduleDir({
      'main.py': '',
      '.atelierignore': 'data/\n*.ckpt\n',
      'data/big.csv': '',
      'w.ckpt': '',
      'node_modules/x/i.js': '',
      '.git/HEAD': '',
      'keep/data.txt': '',
    });
    expect(await listModuleFiles(dir)).toEqual(['.atelierignore', 'keep/data.txt', 'main.py']);
  });

  it('reads one file back', async () => {
    const archive = await packDirectory(await moduleDir({ 'atelier.module.yaml': 'name: x\n', 'main.py': '' }));
    expect(await readArchiveFile(archive, 'atelier.module.yaml')).toBe('name: x\n');
    expect(await readArchiveFile(archive, 'nope')).toBeNull();
  });
});

describe('object store', () => {
  it('stores by digest, idempotently, and refuses corrupt objects', async () => {
    const root = await mkdtemp(path.join(os.tmpdir(), 'atelier-store-'));
    const store = createFileObjectStore(root);
    const digest = await store.put(new TextEncoder().encode('hello'));
    expect(await store.put(new TextEncoder().encode('hello'))).toBe(digest);
    expect((await store.get(digest)).toString()).toBe('hello');
    const fresh = createFileObjectStore(root); // no cached verification
    await writeFile(path.join(root, 'sha256', digest.slice(7, 9), digest.slice(7)), 'tampered');
    await expect(fresh.get(digest)).rejects.toMatchObject({ code: 'DIGEST_MISMATCH' });
    await expect(fresh.get(digest)).rejects.toMatchObject({ code: 'NOT_FOUND' });
    await expect(store.get('md5:abc')).rejects.toMatchObject({ code: 'BAD_USER_INPUT' });
  });
});

/** A gzipped tar written entry by entry, whatever the entries say (what a hostile upload can be). */
function rawArchive(entries: { path: string; type?: string; body?: string; linkpath?: string }[]): Buffer {
  const blocks: Buffer[] = [];
  for (const e of entries) {
    const body = Buffer.from(e.body ?? '');
    const header = new tar.Header({
      path: e.path,
      type: (e.type ?? 'File') as 'File',
      size: body.length,
      mode: 0o644,
      mtime: new Date(0),
      linkpath: e.linkpath,
    });
    header.encode();
    blocks.push(header.block!, body, Buffer.alloc((512 - (body.length % 512)) % 512));
  }
  blocks.push(Buffer.alloc(1024));
  return gzipSync(Buffer.concat(blocks));
}

describe('module archive entries', () => {
  const manifest = { path: 'atelier.module.yaml', body: 'namespace: x\n' };

  it('refuses links, devices, absolute paths and ".." wherever they sit, as no executor should meet them', async () => {
    const hostile = [
      { path: 'data', type: 'SymbolicLink', linkpath: '/etc' },
      { path: 'passwd', type: 'Link', linkpath: '/etc/passwd' },
      { path: 'tty', type: 'CharacterDevice' },
      { path: 'pipe', type: 'FIFO' },
      { path: '/tmp/abs.py', body: 'x' },
      { path: 'src/../../escape.py', body: 'x' },
      { path: 'src\\..\\..\\escape.py', body: 'x' },
    ];
    for (const entry of hostile)
      await expect(readArchiveFile(rawArchive([manifest, entry]), 'atelier.module.yaml'), entry.path).rejects.toThrow(/a module archive holds only|leads out/);
    expect(await readArchiveFile(rawArchive([manifest, { path: 'src/ok..py', body: 'x' }]), 'atelier.module.yaml')).toBe('namespace: x\n');
  });

  it('refuses more entries than a module may hold', async () => {
    const many = Array.from({ length: MAX_ARCHIVE_ENTRIES }, (_, i) => ({ path: `f/${i}` }));
    await expect(readArchiveFile(rawArchive([manifest, ...many]), 'atelier.module.yaml')).rejects.toThrow(`more than ${MAX_ARCHIVE_ENTRIES} entries`);
  });
});
