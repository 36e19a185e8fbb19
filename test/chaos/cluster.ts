// The chaos suite's deployment: real Postgres 15 and nats-server, two control-plane processes sharing them (and
// an object store), two executor hosts; and the faults the suite injects into it, each followed by the restart an
// operator's supervisor would do.
import { cp, mkdir, mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { type ControlPlaneProcess, startControlPlaneProcess } from '../harness/control-plane-process';
import { type ExecutorProcess, startExecutorProcess } from '../harness/executor-process';
import { type NatsServer, startNats } from '../harness/nats';
import { freePort } from '../harness/ports';
import { type PostgresServer, startPostgres } from '../harness/postgres';

/**
 * Where the replicas keep module archives and outputs. `shared-dir`: one local directory both control planes
 * use as ATELIER_DATA_DIR (what works with the local store today). `env`: each replica its own data directory,
 * and this environment (for example an S3 or JetStream object-store backend) for control planes and hosts.
 */
export type ObjectStoreOption = { kind: 'shared-dir' } | { kind: 'env'; env: Record<string, string> };

export interface ClusterOptions {
  heartbeatTimeoutSeconds: number;
  executorConcurrency: number;
  /** The hosts' ATELIER_TASK_ACK_WAIT_SECONDS (unset: the bus default). */
  taskAckWaitSeconds?: number;
  objectStore: ObjectStoreOption;
  log: (line: string) => void;
}

export interface Cluster {
  pg: PostgresServer;
  nats: NatsServer;
  token: string;
  /** The harness's own directory (logs, data directories). */
  dir: string;
  /** Each control plane's URL (fixed: a restarted one comes back on the same port). */
  urls: string[];
  /** The URL of a control plane that runs now (a random one when both do). */
  upUrl(random?: () => number): string;
  hostPids(): number[];
  killControlPlane(i: number, downMs: number): Promise<void>;
  /** SIGKILLs host `i`, calls `beforeKill` (with its pid) just before, and starts it again. */
  killExecutor(i: number, downMs: number, beforeKill: (pid: number) => Promise<void> | void, afterKill: (pid: number) => void): Promise<void>;
  /** Starts again any process that exited on its own; returns what it restarted, each with the end of its output. */
  reviveExited(): Promise<{ process: string; output: string }[]>;
  output(): string;
  /** Where each process's whole output is appended (control-plane-0.log, executor-1.log, …), across its restarts. */
  logDir: string;
  /** Stops everything and removes the harness's directory; `keepLogsIn`: its logs are copied there first. */
  stop(keepLogsIn?: string): Promise<void>;
}

export const CHAOS_TOKEN = 'atl_chaos-suite-admin-token';

async function retrying<T>(what: string, fn: () => Promise<T>, deadlineMs = 300_000): Promise<T> {
  const deadline = Date.now() + deadlineMs;
  for (;;) {
    try {
      return await fn();
    } catch (err) {
      if (Date.now() > deadline) throw new Error(`${what}: ${(err as Error).message}`);
      await new Promise((r) => setTimeout(r, 500));
    }
  }
}

export async function startCluster(options: ClusterOptions): Promise<Cluster> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'atelier-chaos-'));
  const logDir = path.join(dir, 'logs');
  await mkdir(logDir, { recursive: true });
  // Durable commits: the suite crashes Postgres, and a commit a client was told about must survive that.
  const [pg, nats] = await Promise.all([startPostgres({ durableCommits: true, migrated: true }), startNats()]);
  const ports = [await freePort(), await freePort()];
  const urls = ports.map((p) => `http://127.0.0.1:${p}`);
  const storeEnv = options.objectStore.kind === 'env' ? options.objectStore.env : {};
  const cpEnv = (i: number): Record<string, string> => ({
    PORT: String(ports[i]),
    DATABASE_URL: pg.url,
    NATS_URL: nats.url,
    ATELIER_DATA_DIR: path.join(dir, options.objectStore.kind === 'shared-dir' ? 'control-plane' : `control-plane-${i}`),
    ATELIER_ADMIN_TOKEN: CHAOS_TOKEN,
    ATELIER_TICK_MS: '200',
    ATELIER_HEARTBEAT_TIMEOUT_SECONDS: String(options.heartbeatTimeoutSeconds),
    ATELIER_MAX_SUBSCRIPTIONS_PER_TOKEN: '10000',
    ATELIER_LOG_LEVEL: 'info',
    ...storeEnv,
  });
  const hostEnv = (i: number) => ({
    NATS_URL: nats.url,
    ATELIER_URL: urls[i]!,
    ATELIER_TOKEN: CHAOS_TOKEN,
    ATELIER_DATA_DIR: path.join(dir, `executor-${i}`),
    ...(options.taskAckWaitSeconds ? { ATELIER_TASK_ACK_WAIT_SECONDS: String(options.taskAckWaitSeconds) } : {}),
    ...storeEnv,
  });
  const cps: (ControlPlaneProcess | undefined)[] = [undefined, undefined];
  const hosts: (ExecutorProcess | undefined)[] = [undefined, undefined];
  const outputs: string[] = [];
  const keep = (name: string, text: string) => outputs.push(`--- ${name}\n${text.slice(-4_000)}`);

  const startCp = (i: number) =>
    retrying(`control plane ${i} did not start`, async () => {
      cps[i] = await startControlPlaneProcess(cpEnv(i), { startTimeoutMs: 240_000, logFile: path.join(logDir, `control-plane-${i}.log`) });
    });
  const startHost = (i: number) =>
    retrying(`executor host ${i} did not start`, async () => {
      await mkdir(hostEnv(i).ATELIER_DATA_DIR, { recursive: true });
      hosts[i] = await startExecutorProcess(
        hostEnv(i),
        ['local'],
        ['--concurrency', String(options.executorConcurrency)],
        {},
        path.join(logDir, `executor-${i}.log`),
      );
    });

  // All at once (migrations take a lock, so two replicas may start together); a loaded machine is slow at it.
  await Promise.all([startCp(0), startCp(1), startHost(0), startHost(1)]);

  return {
    pg,
    nats,
    token: CHAOS_TOKEN,
    dir,
    logDir,
    urls,
    upUrl(random = Math.random) {
      const up = urls.filter((_, i) => cps[i]?.alive());
      const pool = up.length ? up : urls;
      return pool[Math.floor(random() * pool.length)]!;
    },
    hostPids: () => hosts.filter((h) => h?.alive()).map((h) => h!.child.pid!),
    async killControlPlane(i, downMs) {
      const cp = cps[i];
      cps[i] = undefined;
      await cp?.kill('SIGKILL');
      if (cp) keep(`control plane ${i} (killed)`, cp.output());
      if (downMs) await new Promise((r) => setTimeout(r, downMs));
      await startCp(i);
    },
    async killExecutor(i, downMs, beforeKill, afterKill) {
      const host = hosts[i];
      hosts[i] = undefined;
      if (host) {
        const pid = host.child.pid!;
        await beforeKill(pid);
        await host.stop('SIGKILL');
        afterKill(pid);
        keep(`executor ${i} (killed)`, host.output());
      }
      if (downMs) await new Promise((r) => setTimeout(r, downMs));
      await startHost(i);
    },
    async reviveExited() {
      const revived: { process: string; output: string }[] = [];
      for (const i of [0, 1]) {
        const cp = cps[i];
        if (cp && !cp.alive()) {
          keep(`control plane ${i} (exited on its own)`, cp.output());
          revived.push({ process: `control plane ${i}`, output: cp.output().slice(-1_500) });
          await startCp(i);
        }
        const host = hosts[i];
        if (host && !host.alive()) {
          keep(`executor ${i} (exited on its own)`, host.output());
          revived.push({ process: `executor ${i}`, output: host.output().slice(-1_500) });
          await startHost(i);
        }
      }
      return revived;
    },
    output: () =>
      [
        ...outputs.slice(-6),
        ...cps.map((cp, i) => (cp ? `--- control plane ${i}\n${cp.output().slice(-4_000)}` : '')),
        ...hosts.map((h, i) => (h ? `--- executor ${i}\n${h.output().slice(-4_000)}` : '')),
      ].join('\n'),
    async stop(keepLogsIn) {
      await Promise.all(hosts.map((h) => h?.stop('SIGTERM')));
      await Promise.all(cps.map((cp) => cp?.kill('SIGKILL')));
      await nats.stop();
      await pg.stop();
      if (keepLogsIn) await cp(logDir, keepLogsIn, { recursive: true }).catch(() => undefined);
      await rm(dir, { recursive: true, force: true });
    },
  };
}
