// Runs the control plane as its own process (`atelier start`: server/main.ts, as `npm start` runs it), so tests can SIGKILL it
// and start it again on the same port, database and bus.
import { type ChildProcess, spawn } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { apiClient } from './client';
import { stampedLog } from './log-file';

const root = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', '..');

export interface ControlPlaneProcess {
  url: string;
  /** The server's process id (to read its memory from /proc). */
  pid: number;
  kill(signal?: NodeJS.Signals): Promise<void>;
  /** False once the process has exited, killed or on its own. */
  alive(): boolean;
  output(): string;
}

export interface ControlPlaneProcessOptions {
  /** How long it may take to say where it listens (default 120 s: a loaded 2-core machine can take over 30 s). */
  startTimeoutMs?: number;
  /** Every line it writes is appended here too (`output()` keeps only the last 20 kB): the chaos suite's evidence. */
  logFile?: string;
  /** A command the control plane runs under (its arguments, then the control plane's command line): a pid namespace. */
  wrap?: string[];
}

export async function startControlPlaneProcess(env: Record<string, string>, options: ControlPlaneProcessOptions = {}): Promise<ControlPlaneProcess> {
  const startTimeoutMs = options.startTimeoutMs ?? 120_000;
  // `atelier start` (server/cli/bin.js) imports server/main.ts as `npm start` does, from the CLI's esbuild bundle:
  // through tsx's loader each start took ~5 s and ~3.9 s of CPU, from the bundle ~2.8 s and ~1.8 s (measured on the
  // shared 2-core machine), and the chaos files start a control plane ~20 times between them.
  const command = [...(options.wrap ?? []), process.execPath, path.join(root, 'server', 'cli', 'bin.js'), 'start'];
  const child: ChildProcess = spawn(command[0]!, command.slice(1), {
    cwd: root,
    env: { PATH: process.env.PATH, HOME: process.env.HOME, ATELIER_LOG_LEVEL: 'info', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  const toFile = stampedLog(options.logFile);
  const collect = (c: Buffer) => {
    output = (output + c.toString()).slice(-20_000);
    toFile(c);
  };
  child.stdout!.on('data', collect);
  child.stderr!.on('data', collect);
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  let url = '';
  for (const deadline = Date.now() + startTimeoutMs; !url && Date.now() < deadline; ) {
    const m = /GraphQL\s+(http:\/\/\S+)\/graphql/.exec(output);
    if (m) url = m[1]!;
    else if (child.exitCode !== null) throw new Error(`control plane exited early:\n${output}`);
    else await new Promise((r) => setTimeout(r, 50));
  }
  if (!url) {
    // Not left behind to take the port from the next try.
    child.kill('SIGKILL');
    await exited;
    throw new Error(`control plane did not start in ${startTimeoutMs / 1000} s:\n${output}`);
  }
  return {
    url,
    pid: child.pid!,
    output: () => output,
    alive: () => child.exitCode === null && child.signalCode === null,
    async kill(signal = 'SIGKILL') {
      if (child.exitCode === null) child.kill(signal);
      await exited;
    },
  };
}

/**
 * Starts a control plane that dies at `crashPoint` (ATELIER_TEST_CRASH_AFTER, server/lifecycle/crash-hook.ts), makes
 * `request` against it, and resolves once the process is gone (its output in the error if it outlives 30 s).
 */
export async function crashAt<T>(env: Record<string, string>, crashPoint: string, request: (url: string) => Promise<T>): Promise<T> {
  const dying = await startControlPlaneProcess({ ...env, ATELIER_TEST_CRASH_AFTER: crashPoint });
  const answer = await request(dying.url);
  for (let i = 0; i < 300 && dying.alive(); i++) await new Promise((r) => setTimeout(r, 100));
  if (dying.alive()) {
    const output = dying.output().slice(-2000);
    await dying.kill();
    throw new Error(`the control plane did not die at ${crashPoint}:\n${output}`);
  }
  return answer;
}

/** The run's status once it is no longer QUEUED or RUNNING (or whatever it is after `timeoutMs`), read by `status`. */
export async function settledStatus(status: () => Promise<string>, timeoutMs = 90_000): Promise<string> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const now = await status();
    if (!['QUEUED', 'RUNNING'].includes(now) || Date.now() > deadline) return now;
    await new Promise((r) => setTimeout(r, 100));
  }
}

/**
 * GraphQL against whichever control plane `url()` names now, retried for ~30 s while it is down (between a crash and
 * its restart).
 */
export function retryingGql(url: () => string, token: string) {
  return async (query: string, variables: Record<string, unknown> = {}) => {
    for (let i = 0; ; i++) {
      try {
        return await apiClient(url(), token).gql(query, variables);
      } catch (error) {
        if (i > 150) throw error;
        await new Promise((r) => setTimeout(r, 200));
      }
    }
  };
}
