// The local deployer's hold on the processes it starts (revision servers and routers): started detached in their own
// process group with output to files (so they outlive the deployer and a new one can read their stderr), recorded
// by pid and start time (never fooled by a recycled pid or a zombie), probed over HTTP, and stopped as a group.
import { spawn } from 'node:child_process';
import { appendFile, open, readFile } from 'node:fs/promises';
import { request } from 'node:http';
import { connect, createServer } from 'node:net';
import path from 'node:path';
import { processAlive, groupAlive as sharedGroupAlive, startTimeOf } from '../../process-group';

/** A process the deployer started: enough to find it again after a restart of the deployer. */
export interface ProcessRef {
  pid: number;
  /** From /proc/PID/stat: tells our process from a later one given the same pid. */
  startTime: number | null;
}

export const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** The ledger of every process a deployer over `stateDir` started (for tests and `liveProcesses`). */
const ledger = (stateDir: string) => path.join(stateDir, 'spawned.jsonl');

export async function startProcess(options: {
  stateDir: string;
  command: string[];
  cwd: string;
  env: Record<string, string>;
  /** Files its stdout and stderr are appended to. */
  stdout: string;
  stderr: string;
}): Promise<ProcessRef> {
  const [file, ...args] = options.command;
  if (!file) throw new Error('empty command');
  const out = await open(options.stdout, 'a');
  const err = await open(options.stderr, 'a');
  try {
    const child = spawn(file, args, { cwd: options.cwd, env: options.env, detached: true, stdio: ['ignore', out.fd, err.fd] });
    // Read before the event loop may reap a process that exits at once (startTimeOf, process-group.ts).
    const startTime = child.pid === undefined ? null : startTimeOf(child.pid);
    const pid = await new Promise<number>((resolve, reject) => {
      child.once('spawn', () => resolve(child.pid!));
      child.once('error', reject);
    });
    child.unref();
    const ref = { pid, startTime };
    await appendFile(ledger(options.stateDir), `${JSON.stringify(ref)}\n`);
    return ref;
  } finally {
    await out.close();
    await err.close();
  }
}

/** Whether the process itself still runs (cheap: one /proc read). */
export async function alive(ref: ProcessRef | null): Promise<boolean> {
  return ref ? processAlive(ref.pid, ref.startTime) : false;
}

/**
 * Whether anything of its process group still runs: a sandbox's server outlives a killed bwrap. While a member lives
 * the kernel keeps the group id, so signalling the group then is safe. (Each process leads its own group.)
 */
export async function groupAlive(ref: ProcessRef | null): Promise<boolean> {
  return ref ? sharedGroupAlive({ pid: ref.pid, pgid: ref.pid, startTime: ref.startTime }) : false;
}

/** SIGTERM to the process group, SIGKILL after `graceMs`; resolves once nothing of the group is left. */
export async function stopProcess(ref: ProcessRef | null, graceMs = 2_000): Promise<void> {
  if (!(await groupAlive(ref))) return;
  const signal = (s: NodeJS.Signals) => {
    try {
      process.kill(-ref!.pid, s);
    } catch {
      // gone meanwhile
    }
  };
  signal('SIGTERM');
  const deadline = Date.now() + graceMs;
  while (await groupAlive(ref)) {
    if (Date.now() > deadline) signal('SIGKILL');
    await sleep(20);
  }
}

/** How many process groups of the ledger still run: zero once every deployment over `stateDir` is deleted. */
export async function liveProcesses(stateDir: string): Promise<number> {
  let text = '';
  try {
    text = await readFile(ledger(stateDir), 'utf8');
  } catch {
    return 0;
  }
  const refs = text
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as ProcessRef);
  return (await Promise.all(refs.map(groupAlive))).filter(Boolean).length;
}

/** GET a loopback path (with `headers`); the status code, or null when nothing answered within `timeoutMs`. */
export function probe(
  port: number,
  pathname: string,
  timeoutMs = 1_000,
  headers: Record<string, string> = {},
): Promise<{ status: number; body: string } | null> {
  return new Promise((resolve) => {
    const req = request({ host: '127.0.0.1', port, path: pathname, timeout: timeoutMs, headers }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c) => {
        body += c;
      });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('timeout', () => req.destroy());
    req.on('error', () => resolve(null));
    req.end();
  });
}

/** A server's health: GET `pathname` answers 200, or (pathname null) its port accepts a TCP connection. */
export async function healthy(port: number, pathname: string | null, timeoutMs = 1_000): Promise<boolean> {
  if (pathname !== null) return (await probe(port, pathname, timeoutMs))?.status === 200;
  return new Promise((resolve) => {
    const socket = connect({ host: '127.0.0.1', port, timeout: timeoutMs });
    const done = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.once('connect', () => done(true));
    socket.once('error', () => done(false));
    socket.once('timeout', () => done(false));
  });
}

/** A loopback port free now (the OS picks it). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

/** Whether a loopback port can be listened on now. */
export function portFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once('error', () => resolve(false));
    server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)));
  });
}

/** The last lines of a log file (up to ~2 KB), for messages. */
export async function tail(file: string, lines = 8): Promise<string> {
  try {
    const text = await readFile(file, 'utf8');
    return text.slice(-2_048).trimEnd().split('\n').slice(-lines).join('\n');
  } catch {
    return '';
  }
}
