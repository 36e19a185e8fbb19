// Watches the chaos module's processes from outside, through /proc: each one's task, attempt and start time (from
// the title the module sets), and the executor host above it. A module still alive a grace period after its host
// was killed is an orphan. What is seen here is one of the suite's sources of executions: it needs no cooperation
// from the executor or its sandbox.
import { readdirSync, readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';

export interface ModuleProcess {
  pid: number;
  task: string;
  attempt: number;
  /** The module's own clock when it started (ms since the epoch). */
  time: number;
  /** The executor host pid it ran under when first seen, if any. */
  hostPid?: number;
}

export interface Orphan extends ModuleProcess {
  /** How long after its host was killed it was still alive. */
  aliveAfterMs: number;
}

// The module's title holds its start time (its command line's room is too small for more); the task and attempt are
// in its environment.
const TITLE = /^atelier-chaos (\d{13})\b/;
const envOf = (environ: string, name: string) =>
  environ
    .split('\0')
    .find((v) => v.startsWith(`${name}=`))
    ?.slice(name.length + 1);

async function read(path: string): Promise<string | null> {
  try {
    return await readFile(path, 'utf8');
  } catch {
    return null;
  }
}

/** A /proc file read at once, or null when its process is gone (or hides it). */
function readNow(path: string): string | null {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return null;
  }
}

/** /proc reads between two yields to the event loop while scanning (well under a millisecond of synchronous reads). */
const SCAN_CHUNK = 64;

interface Stat {
  ppid: number;
  state: string;
}

/** Whether a SIGKILL is pending for the process (it will never run its own code again, only finish dying). */
async function dying(pid: number): Promise<boolean> {
  const status = await read(`/proc/${pid}/status`);
  if (!status) return true; // gone
  const pending = [...status.matchAll(/^(?:SigPnd|ShdPnd):\s*([0-9a-f]+)$/gm)].reduce((mask, m) => mask | BigInt(`0x${m[1]}`), 0n);
  return (pending & (1n << 8n)) !== 0n; // SIGKILL is signal 9: bit 8
}

function parseStat(text: string): Stat {
  const rest = text.slice(text.lastIndexOf(')') + 2).split(' ');
  return { state: rest[0] ?? '', ppid: Number(rest[1]) };
}

export interface ProcessWatcher {
  /** Samples now (before a host is killed, so its youngest modules are known to be its). */
  sampleNow(): Promise<void>;
  /** Says that this host pid was SIGKILLed now: its modules must be gone within the grace period. */
  hostKilled(pid: number): void;
  /** Every module process seen, by `task:attempt:time`. */
  seen(): ModuleProcess[];
  orphans(): Orphan[];
  /** Module processes that were running under a host when it was killed (the orphans' candidates). */
  underKilledHosts(): number;
  /** Module processes alive now (to kill them at the end, as the suite owns them). */
  alive(): Promise<number[]>;
  stop(): Promise<void>;
}

/** Samples /proc every `everyMs` for module processes; `hostPids()` are the executor hosts alive now. */
export function watchModuleProcesses(options: { everyMs?: number; graceMs?: number; hostPids: () => number[] }): ProcessWatcher {
  const everyMs = options.everyMs ?? 200;
  // Long enough for a parent-death signal or a supervisor to act; a module that runs on past it is an orphan.
  const graceMs = options.graceMs ?? 500;
  const seen = new Map<string, ModuleProcess>();
  const killedAt = new Map<number, number>();
  const orphans = new Map<string, Orphan>();
  let lastAlive = new Set<string>();
  let underKilled = 0;
  let stopped = false;

  /**
   * The module processes alive now, each with the known host above it. Synchronous reads, a chunk at a time with the
   * event loop let run between chunks (as plugins/process-group.ts scans): procfs answers from memory, and the same
   * reads through libuv's threadpool (open, fstat, read, close: four operations a file) cost the chaos suite's worker
   * ~3 s of CPU a run, every 200 ms across all of the machine's processes. A module is found by its command line
   * (a zombie's is empty), so only modules and their ancestors have their stat read.
   */
  async function scan(): Promise<{ pid: number; proc: ModuleProcess; stat: Stat }[]> {
    const found: { pid: number; proc: ModuleProcess; stat: Stat }[] = [];
    let entries: string[];
    try {
      entries = readdirSync('/proc');
    } catch {
      return found;
    }
    const stats = new Map<number, Stat | null>();
    const statOf = (pid: number) => {
      if (!stats.has(pid)) {
        const text = readNow(`/proc/${pid}/stat`);
        stats.set(pid, text ? parseStat(text) : null);
      }
      return stats.get(pid) ?? null;
    };
    let read = 0;
    for (const entry of entries) {
      if (!/^\d+$/.test(entry)) continue;
      if (++read % SCAN_CHUNK === 0) await new Promise((resolve) => setImmediate(resolve));
      const pid = Number(entry);
      const cmdline = readNow(`/proc/${pid}/cmdline`);
      const m = cmdline && TITLE.exec(cmdline.replace(/\0/g, ' '));
      if (!m) continue;
      const stat = statOf(pid);
      if (!stat || stat.state === 'Z' || stat.state === 'X') continue;
      const environ = readNow(`/proc/${pid}/environ`) ?? '';
      const task = envOf(environ, 'ATELIER_TASK_ID');
      const attempt = Number(envOf(environ, 'ATELIER_ATTEMPT'));
      if (!task || !Number.isInteger(attempt)) continue;
      found.push({ pid, stat, proc: { pid, task, attempt, time: Number(m[1]) } });
    }
    // The host above each module: the nearest ancestor that is a known host.
    const hosts = new Set([...options.hostPids(), ...killedAt.keys()]);
    for (const f of found) {
      let p = f.stat.ppid;
      for (let depth = 0; depth < 8 && p > 1; depth++) {
        if (hosts.has(p)) {
          f.proc.hostPid = p;
          break;
        }
        p = statOf(p)?.ppid ?? 0;
      }
    }
    return found;
  }

  const keyOf = (p: ModuleProcess) => `${p.task}:${p.attempt}:${p.time}`;
  /**
   * The module processes of these hosts: under one now, or seen under one before (its host since killed). Another
   * suite's or test's modules on the same machine are none of this watcher's business (nor its to end).
   */
  async function ours() {
    return (await scan()).filter((f) => f.proc.hostPid !== undefined || seen.get(keyOf(f.proc))?.hostPid !== undefined);
  }

  async function sample() {
    const now = Date.now();
    const alive = new Set<string>();
    for (const { proc } of await ours()) {
      const key = keyOf(proc);
      alive.add(key);
      const known = seen.get(key);
      if (!known) seen.set(key, proc);
      else if (known.hostPid === undefined && proc.hostPid !== undefined) known.hostPid = proc.hostPid;
      const host = seen.get(key)!.hostPid;
      const killed = host === undefined ? undefined : killedAt.get(host);
      // A module its host's death has already killed (the signal pending while, on a loaded machine, it waits on a
      // disk read) is not an orphan: it never runs again.
      if (killed !== undefined && now - killed > graceMs && !(await dying(proc.pid))) {
        const previous = orphans.get(key);
        orphans.set(key, { ...seen.get(key)!, pid: proc.pid, aliveAfterMs: Math.max(previous?.aliveAfterMs ?? 0, now - killed) });
      }
    }
    lastAlive = alive;
  }

  const loop = (async () => {
    while (!stopped) {
      await sample().catch(() => undefined);
      await new Promise((r) => setTimeout(r, everyMs));
    }
  })();

  return {
    sampleNow: () => sample().catch(() => undefined),
    hostKilled(pid) {
      killedAt.set(pid, Date.now());
      underKilled += [...lastAlive].filter((key) => seen.get(key)?.hostPid === pid).length;
    },
    underKilledHosts: () => underKilled,
    seen: () => [...seen.values()],
    orphans: () => [...orphans.values()],
    async alive() {
      return (await ours()).map((f) => f.pid);
    },
    async stop() {
      stopped = true;
      await loop;
    },
  };
}
