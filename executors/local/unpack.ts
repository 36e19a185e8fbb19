// Unpacking a module archive, verified against its digest every time: the bytes hashed are the bytes unpacked,
// so an archive swapped in the store (or an executor's cache) after its first use is refused, never run.
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, rm } from 'node:fs/promises';
import { PassThrough } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import * as tar from 'tar';

/** The archive's bytes do not hash to the digest the task names. */
export class ArchiveDigestMismatch extends Error {
  constructor(
    readonly expected: string,
    readonly actual: string,
  ) {
    super(`the module archive does not match its digest ${expected} (its content hashes to ${actual}); refusing to run it. Publish the module again.`);
    this.name = 'ArchiveDigestMismatch';
  }
}

/** Unpacks `archive` into `dir`, hashing it as it streams; on a mismatch the directory is removed and this throws. */
export async function unpackVerified(archive: string, digest: string, dir: string): Promise<void> {
  await mkdir(dir, { recursive: true });
  const hash = createHash('sha256');
  const tee = new PassThrough();
  tee.on('data', (chunk: Buffer) => hash.update(chunk));
  try {
    await pipeline(createReadStream(archive), tee, tar.x({ cwd: dir, preserveOwner: false, strict: true }));
  } catch (err) {
    await rm(dir, { recursive: true, force: true });
    throw err;
  }
  const actual = `sha256:${hash.digest('hex')}`;
  if (actual !== digest) {
    await rm(dir, { recursive: true, force: true });
    throw new ArchiveDigestMismatch(digest, actual);
  }
}
