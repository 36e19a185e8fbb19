// Module archives: a directory packed into a deterministic tar.gz (sorted entries, fixed times and owners,
// normalised modes), so the same files always give the same digest; and reading one file back out.
import { readdir, readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import { createGunzip, gzipSync } from 'node:zlib';
import ignore from 'ignore';
import * as tar from 'tar';
import { DEFAULT_MAX_UNPACKED_MB } from '../config/defaults';
import { AtelierError } from '../errors';

const DEFAULT_MAX_UNPACKED_BYTES = DEFAULT_MAX_UNPACKED_MB * 1024 * 1024;

const mib = (bytes: number) => `${Math.round(bytes / 1024 / 1024)} MiB`;
const tooLarge = (what: string, limit: number) =>
  new AtelierError(
    'PAYLOAD_TOO_LARGE',
    `${what} more than ${mib(limit)} unpacked, the server's limit (ATELIER_MAX_UNPACKED_MB); add large files to .atelierignore and keep data out of modules.`,
  );

export const IGNORE_FILE = '.atelierignore';
const alwaysIgnored = ['.git', 'node_modules', '.atelier', '__pycache__', '.DS_Store'];

/** Lists files under `dir` (relative, POSIX separators, sorted), honouring `.atelierignore` (gitignore syntax). */
export async function listModuleFiles(dir: string): Promise<string[]> {
  const rules = ignore().add(alwaysIgnored);
  try {
    rules.add(await readFile(path.join(dir, IGNORE_FILE), 'utf8'));
  } catch {
    // no ignore file: only the defaults apply
  }
  const out: string[] = [];
  const walk = async (rel: string) => {
    const entries = await readdir(path.join(dir, rel), { withFileTypes: true });
    for (const entry of entries) {
      const child = rel ? `${rel}/${entry.name}` : entry.name;
      if (rules.ignores(entry.isDirectory() ? `${child}/` : child)) continue;
      if (entry.isDirectory()) await walk(child);
      else if (entry.isFile()) out.push(child);
    }
  };
  await walk('');
  return out.sort();
}

const READ_AHEAD = 64;

/** Packs `files` (relative to `dir`) into a byte-for-byte reproducible tar.gz, refusing more than `maxBytes` of files. */
export async function packDirectory(dir: string, files?: string[], maxBytes = DEFAULT_MAX_UNPACKED_BYTES): Promise<Buffer> {
  const list = files ?? (await listModuleFiles(dir));
  let total = 0;
  for (const file of list) {
    total += (await stat(path.join(dir, file))).size;
    if (total > maxBytes) throw tooLarge(`The module's files hold`, maxBytes);
  }
  const pack = new tar.Pack({ cwd: dir, portable: true, noMtime: true, noDirRecurse: true, mtime: new Date(0) });
  const chunks: Buffer[] = [];
  const done = new Promise<void>((resolve, reject) => {
    pack.on('data', (c: Buffer) => chunks.push(c));
    pack.on('end', () => resolve());
    pack.on('error', reject);
  });
  // Files are read many at a time (a module is often hundreds of small files) and added in their sorted order.
  const read = async (file: string) => {
    const [info, body] = await Promise.all([stat(path.join(dir, file)), readFile(path.join(dir, file))]);
    // Only the executable bit is kept, so checkouts with different umasks agree.
    return { file, mode: info.mode & 0o111 ? 0o755 : 0o644, body };
  };
  const contents: { file: string; mode: number; body: Buffer }[] = [];
  for (let i = 0; i < list.length; i += READ_AHEAD) contents.push(...(await Promise.all(list.slice(i, i + READ_AHEAD).map(read))));
  for (const { file, mode, body } of contents) {
    const entry = new tar.ReadEntry(
      new tar.Header({ path: file, mode, size: body.length, type: 'File', mtime: new Date(0), uid: 0, gid: 0, uname: '', gname: '' }),
    );
    pack.add(entry);
    entry.end(body);
  }
  pack.end();
  await done;
  // gzip's header carries no timestamp when produced by zlib's gzipSync, so the output is stable.
  return gzipSync(Buffer.concat(chunks), { level: 6 });
}

/** The most entries a module archive may hold: each becomes a file on every executor host that runs it. */
export const MAX_ARCHIVE_ENTRIES = 20_000;

const PLAIN_TYPES = new Set(['File', 'OldFile', 'ContiguousFile', 'Directory']);

/**
 * Why an archive entry cannot be part of a module, or null: only files and folders, at relative paths that stay
 * inside the module (a link, device or `..` is refused when published, not met by an executor unpacking it).
 */
export function entryProblem(entry: { path: string; type: string }): string | null {
  if (!PLAIN_TYPES.has(entry.type))
    return `entry "${entry.path}" is a ${entry.type}; a module archive holds only files and folders (links are not followed when a module is pushed)`;
  if (entry.path.startsWith('/') || /^[A-Za-z]:/.test(entry.path) || entry.path.split(/[\\/]/).includes('..'))
    return `entry "${entry.path}" leads out of the module's folder; paths in a module archive are relative, without ".."`;
  return null;
}

/**
 * Reads one file out of an archive, or null when absent. Every entry is checked on the way (entryProblem, at most
 * MAX_ARCHIVE_ENTRIES), so an archive that passes can be unpacked anywhere. The whole archive is inflated as a stream and counted
 * as it inflates: past `maxUnpackedBytes` it stops with PAYLOAD_TOO_LARGE, so a gzip bomb costs neither memory
 * nor more than the limit's worth of inflating (which runs off the event loop, in zlib's thread pool).
 */
export async function readArchiveFile(
  archive: Uint8Array,
  name: string,
  maxBytes = 1 << 20,
  maxUnpackedBytes = DEFAULT_MAX_UNPACKED_BYTES,
): Promise<string | null> {
  let found: string | null = null;
  let tooBig = false;
  let entries = 0;
  await new Promise<void>((resolve, reject) => {
    const parser = new tar.Parser({
      onReadEntry: (entry) => {
        const problem = ++entries > MAX_ARCHIVE_ENTRIES ? `the archive holds more than ${MAX_ARCHIVE_ENTRIES} entries` : entryProblem(entry);
        if (problem) {
          entry.resume();
          return fail(new Error(problem));
        }
        if (entry.path.replace(/^\.\//, '') !== name) return entry.resume();
        if (entry.size > maxBytes) {
          tooBig = true;
          return entry.resume();
        }
        const parts: Buffer[] = [];
        entry.on('data', (c: Buffer) => parts.push(c));
        entry.on('end', () => (found = Buffer.concat(parts).toString('utf8')));
      },
    });
    let settled = false;
    const fail = (error: Error) => {
      if (settled) return;
      settled = true;
      gunzip.destroy();
      reject(error);
    };
    parser.on('end', () => {
      settled = true;
      gunzip.destroy(); // whatever follows the tar's end is not inflated
      resolve();
    });
    parser.on('error', fail);
    const bytes = Buffer.from(archive.buffer, archive.byteOffset, archive.byteLength);
    const gzipped = bytes[0] === 0x1f && bytes[1] === 0x8b;
    const gunzip = createGunzip();
    if (!gzipped) {
      // A plain tar is already its unpacked size.
      if (bytes.length > maxUnpackedBytes) return fail(tooLarge('The archive holds', maxUnpackedBytes));
      return void parser.end(bytes);
    }
    let inflated = 0;
    gunzip.on('data', (chunk: Buffer) => {
      inflated += chunk.length;
      if (inflated > maxUnpackedBytes) return fail(tooLarge('The archive inflates to', maxUnpackedBytes));
      if (settled) return;
      if (!parser.write(chunk)) {
        gunzip.pause();
        parser.once('drain', () => gunzip.resume());
      }
    });
    gunzip.on('end', () => parser.end());
    gunzip.on('error', fail);
    gunzip.end(bytes);
  });
  if (tooBig)
    throw new AtelierError('PAYLOAD_TOO_LARGE', `${name} in the archive is larger than ${maxBytes.toLocaleString('en-US')} bytes, the most it may have.`);
  return found;
}
