// The progress channel of a cold-started local module: fd 3 is a regular file, not a pipe, so the module's writes
// never wait for the host (a pipe holds 64 KiB; a training loop logging every step blocked on it whenever the host's
// event loop was busy, e.g. an embedded control plane storing points: 100,000 points took 30× the loop's own time).
// The file is unlinked as soon as the module holds it (nothing is left behind, whatever ends the host) and the host
// tails it through its own descriptor, batching whatever it finds each time it looks.
// Growth: the file's size is everything the module wrote (~21 bytes per metric point in the helpers' packed `series`
// lines; 100,000 points ≈ 2.1 MB), but the disk it holds is bounded: once the host has read PUNCH_EVERY_BYTES more, the part
// already read is given back (`fallocate --punch-hole`, offsets kept, so the module's appends and the host's reads go
// on unchanged). Not a truncate: the module appends without any lock, so a truncate could drop a write made between
// the host's last read and the truncate. Where punching is not supported (no fallocate, a file system without it)
// the file keeps its blocks until the attempt ends, as before.
import { spawn } from 'node:child_process';
import { closeSync, fstatSync, openSync, read, unlinkSync } from 'node:fs';
import path from 'node:path';

/** How often the host looks for new lines while the module runs: the latency of progress, outputs and live metrics. */
export const PROGRESS_POLL_MS = 50;
/**
 * Bytes read per look (a larger backlog takes several reads in a row, without waiting between them). Each read's
 * lines are handled at once, holding the host's event loop (~12,000 packed points, a few ms): small enough that the
 * module's exit is stamped on time when it comes during a backlog (the stamp waits for the loop).
 */
const READ_BYTES = 1 << 18;
/** Bytes read between two punches: the disk a progress file holds stays under about this much plus the unread rest. */
export const PUNCH_EVERY_BYTES = 64 << 20;
const PAGE = 4096;

export interface ProgressFile {
  /** The descriptor to hand the child as its fd 3; closed here by `handedOver`. */
  writeFd: number;
  /** The child holds its copy: close ours and remove the name. */
  handedOver(): void;
  /** Reads from the start, calling `push` with each chunk read, until `finish` or `stop`. */
  follow(push: (chunk: Buffer) => void): void;
  /** Reads what is left up to the end and stops (resolves once everything written so far was pushed). */
  finish(): Promise<void>;
  /** Stops at once and closes the file. */
  stop(): void;
  /** The disk the file holds now (its allocated blocks), in bytes. */
  allocatedBytes(): number;
}

/** Creates the channel file in `dir` (a folder of the attempt's own). */
export function openProgressFile(dir: string, options: { punchEveryBytes?: number } = {}): ProgressFile {
  const file = path.join(dir, `.atelier-progress-${process.pid}-${Date.now()}`);
  // O_APPEND: a module's grandchildren writing too each add whole writes at the end.
  const writeFd = openSync(file, 'a', 0o600);
  const readFd = openSync(file, 'r');
  let writeOpen = true;
  let named = true;
  let closed = false;
  let following = true;
  let position = 0;
  let timer: NodeJS.Timeout | undefined;
  let reading: Promise<void> | undefined;
  let push: (chunk: Buffer) => void = () => undefined;
  const buffer = Buffer.allocUnsafe(READ_BYTES);

  let punchEvery = options.punchEveryBytes ?? PUNCH_EVERY_BYTES;
  let punched = 0;
  let punching = false;
  /** Gives back the pages already read. fallocate gets its own copy of the descriptor (as stdin, reopened read-write
   * through /dev/stdin): closing ours meanwhile can never make it punch another file that reused the number. */
  const punch = () => {
    const upTo = Math.floor(position / PAGE) * PAGE;
    if (punching || closed || upTo - punched < punchEvery) return;
    punching = true;
    const child = spawn('fallocate', ['--punch-hole', '--offset', String(punched), '--length', String(upTo - punched), '/dev/stdin'], {
      stdio: [readFd, 'ignore', 'ignore'],
    });
    const done = (ok: boolean) => {
      punching = false;
      if (ok) punched = upTo;
      else punchEvery = Number.POSITIVE_INFINITY; // not supported here: the file keeps its blocks, as before
    };
    child.once('error', () => done(false));
    child.once('exit', (code) => done(code === 0));
  };
  const readOnce = () =>
    new Promise<number>((resolve) =>
      read(readFd, buffer, 0, READ_BYTES, position, (err, bytes) => {
        if (err || closed) return resolve(0);
        position += bytes;
        if (bytes > 0) push(Buffer.from(buffer.subarray(0, bytes)));
        punch();
        resolve(bytes);
      }),
    );
  /** Reads until the end as it is now. */
  const drain = async () => {
    while (!closed && (await readOnce()) === READ_BYTES);
  };
  const look = () => {
    timer = undefined;
    reading = drain().then(() => {
      reading = undefined;
      if (!closed && following) timer = setTimeout(look, PROGRESS_POLL_MS);
    });
  };
  const unlink = () => {
    if (!named) return;
    named = false;
    try {
      unlinkSync(file);
    } catch {
      // already gone: nothing to remove
    }
  };
  const close = () => {
    if (closed) return;
    closed = true;
    if (timer) clearTimeout(timer);
    if (writeOpen) closeSync(writeFd);
    writeOpen = false;
    closeSync(readFd);
    unlink();
  };
  return {
    writeFd,
    handedOver() {
      if (writeOpen) closeSync(writeFd);
      writeOpen = false;
      unlink();
    },
    follow(onChunk) {
      push = onChunk;
      look();
    },
    async finish() {
      if (closed) return;
      following = false;
      if (timer) clearTimeout(timer);
      timer = undefined;
      await reading;
      await drain();
      close();
    },
    stop: close,
    allocatedBytes: () => (closed ? 0 : fstatSync(readFd).blocks * 512),
  };
}
