// Runs `atelier executor --pool …` as a separate process, as an operator would next to NATS.
import { type ChildProcess, spawn } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { stampedLog } from './log-file';

const bin = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', '..', 'server', 'cli', 'bin.js');

export interface ExecutorProcess {
  child: ChildProcess;
  output(): string;
  /** False once the process has exited, killed or on its own. */
  alive(): boolean;
  stop(signal?: NodeJS.Signals): Promise<void>;
}

export async function startExecutorProcess(
  env: { NATS_URL: string; ATELIER_URL: string; ATELIER_TOKEN: string; ATELIER_DATA_DIR: string },
  pools = ['local'],
  extraArgs: string[] = [],
  /** More of the host's environment (ATELIER_MODULE_ISOLATION, a secret the isolation tests look for). */
  extraEnv: Record<string, string> = {},
  /** Every line it writes is appended here too (`output()` keeps only the last 20 kB): the chaos suite's evidence. */
  logFile?: string,
): Promise<ExecutorProcess> {
  // PROFILE_HOST_NODE_ARGS='--cpu-prof --cpu-prof-dir=/tmp/prof': node flags for the host process (the profiles read them).
  const nodeArgs = process.env.PROFILE_HOST_NODE_ARGS?.split(' ').filter(Boolean) ?? [];
  const child = spawn(process.execPath, [...nodeArgs, bin, 'executor', ...pools.flatMap((p) => ['--pool', p]), ...extraArgs], {
    env: { PATH: process.env.PATH, HOME: process.env.HOME, ...extraEnv, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  const toFile = stampedLog(logFile);
  const collect = (c: Buffer) => {
    output = (output + c.toString()).slice(-20_000);
    toFile(c);
  };
  child.stdout!.on('data', collect);
  child.stderr!.on('data', collect);
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  // Ready once it says which pools it serves.
  for (let i = 0; i < 200 && !/pool|serving/i.test(output); i++) {
    if (child.exitCode !== null) throw new Error(`executor process exited early:\n${output}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  return {
    child,
    output: () => output,
    alive: () => child.exitCode === null && child.signalCode === null,
    async stop(signal = 'SIGTERM') {
      if (child.exitCode === null) child.kill(signal);
      const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
      await exited;
      clearTimeout(timer);
    },
  };
}
