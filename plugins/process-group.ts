// A hold on a child's process group, read from /proc, shared by the local executor and the local deployer: whether it
// still runs (never fooled by a recycled pid or a zombie), signalling it, and killing what is left of it.
import { readdirSync, readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Signals a process group; false when nothing received it (ESRCH: already gone; EPERM: not ours to stop). */
export function signalGroup(pgid: number, signal: NodeJS.Signals): boolean {
  try {
    process.kill(-pgid, signal);
    return true;
  } catch {
    return false;
  }
}

interface ProcStat {
  state: string;
  pgrp: number;
  startTime: number;
}

/** A /proc/PID/stat's fields: the command name (field 2) may hold spaces and parentheses, so they are counted after its last ')'. */
function parseStat(text: string): ProcStat {
  const rest = text.slice(text.lastIndexOf(')') + 2).split(' ');
  return { state: rest[0] ?? '', pgrp: Number(rest[2]), startTime: Number(rest[19]) };
}

async function readStat(pid: number | string): Promise<ProcStat | null> {
  try {
    return parseStat(await readFile(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return null;
  }
}

/** Stat reads between two yields to the event loop while scanning /proc (~0.3 ms of synchronous reads). */
const SCAN_CHUNK = 64;

/**
 * Every process's stat. Read synchronously, a chunk at a time with the event loop let run between chunks: procfs
 * answers from memory, and the same reads through libuv's threadpool (four operations a file) cost ~4× the CPU and
 * held up every other file operation of the host (unpacking, the progress files) while they ran.
 */
async function procStats(): Promise<{ pid: number; stat: ProcStat }[]> {
  let entries: string[];
  try {
    entries = readdirSync('/proc');
  } catch {
    return [];
  }
  const stats: { pid: number; stat: ProcStat }[] = [];
  let read = 0;
  for (const entry of entries) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      stats.push({ pid: Number(entry), stat: parseStat(readFileSync(`/proc/${entry}/stat`, 'utf8')) });
    } catch {
      // gone meanwhile
    }
    if (++read % SCAN_CHUNK === 0) await new Promise((resolve) => setImmediate(resolve));
  }
  return stats;
}

/**
 * A child's start time, read at once: call it before yielding to the event loop after the spawn. Node reaps an exited
 * child in its event loop, and a read queued behind the threadpool's work (unpacking, progress files) found a fast
 * module's /proc entry gone: a null start time, so a recycled pid would pass for the process. Unreaped, even a child
 * that has already exited is still there (a zombie), and procfs answers a sync read from memory.
 */
export function startTimeOf(pid: number): number | null {
  try {
    return parseStat(readFileSync(`/proc/${pid}/stat`, 'utf8')).startTime;
  } catch {
    return null;
  }
}

/** Alive means: present in /proc, not a zombie, and started when our process did (not a recycled pid). */
export async function processAlive(pid: number, startTime: number | null): Promise<boolean> {
  const s = await readStat(pid);
  if (!s || s.state === 'Z' || s.state === 'X') return false;
  return startTime === null || s.startTime === startTime;
}

/**
 * Whether anything of the group still runs. Zombies keep `kill(-pgid, 0)` succeeding, so /proc decides. While any
 * member lives the kernel cannot hand the group's id to a new process, so signalling -pgid then is safe.
 */
export async function groupAlive(handle: { pid: number; pgid: number; startTime: number | null }): Promise<boolean> {
  // No member at all, zombie or not (ESRCH): gone, decided without reading /proc. Every attempt's finalize asks this
  // once its module has exited, and the scan below reads every process's stat (~100–1,000 reads through libuv's
  // threadpool, 15–30 ms here) just as the host starts its next attempt.
  if (groupEmpty(handle.pgid)) return false;
  if (await processAlive(handle.pid, handle.startTime)) return true;
  return (await procStats()).some(({ stat: s }) => s.pgrp === handle.pgid && s.state !== 'Z' && s.state !== 'X');
}

/** True when no process has this process group id (a zombie member would still make `kill(-pgid, 0)` succeed). */
function groupEmpty(pgid: number): boolean {
  try {
    process.kill(-pgid, 0);
    return false;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'ESRCH'; // EPERM: someone's there, another user's
  }
}

/** Waits until nothing of the group runs, or `ms` pass; whether it is gone. */
export async function groupGone(handle: { pid: number; pgid: number; startTime: number | null }, ms: number): Promise<boolean> {
  for (const deadline = Date.now() + ms; ; await sleep(10)) {
    if (!(await groupAlive(handle))) return true;
    if (Date.now() >= deadline) return false;
  }
}

/** Kills whatever is left of the group, and waits (briefly) until /proc says it is gone. */
export async function killGroup(handle: { pid: number; pgid: number; startTime: number | null }) {
  for (let i = 0; i < 40; i++) {
    if (!(await groupAlive(handle))) return;
    signalGroup(handle.pgid, 'SIGKILL');
    await sleep(25);
  }
}

/**
 * Signals every live member of the group but `except` (a sandbox's bwrap, which would die of a SIGTERM and take
 * the module with it before its handler ran); true when any received it.
 */
export async function signalMembers(pgid: number, signal: NodeJS.Signals, except: number): Promise<boolean> {
  let any = false;
  for (const { pid, stat: s } of await procStats()) {
    if (pid === except || s.pgrp !== pgid || s.state === 'Z' || s.state === 'X') continue;
    try {
      process.kill(pid, signal);
      any = true;
    } catch {
      // gone meanwhile
    }
  }
  return any;
}
