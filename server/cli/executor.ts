// `atelier executor`: a standalone executor host process next to NATS, taking the tasks of its pools from
// JetStream and fetching module archives from the control plane over HTTP.
import { chmod, mkdir } from 'node:fs/promises';
import path from 'node:path';
import { createExecutorHost } from '../../plugins/host';
import { redactUrl } from '../../plugins/redact-url';
import { createExecutorRegistry } from '../../plugins/registry';
import { defaultHostName } from '../config';
import { parseDownloadRetryMs } from '../config/object-store';
import { executorStopGraceMs, maxLogBytes, taskAckWaitMs, taskInFlightBytes } from '../config/parse';
import { executorsFromEnv } from '../executors';
import { surviveLostConnections } from '../lifecycle/transient-errors';
import { createHttpArtifactSource } from './artifact-source';
import { createClient } from './client';
import { readCliConfig } from './config';
import { ApiError, CliError } from './errors';

export interface ExecutorCommandOptions {
  url: string;
  token: string | null;
  pools: string[];
  /** GPUs a task may use on this host (advertised in its heartbeats). */
  gpus?: number;
  concurrency?: number;
  /** Run every task with this executor whatever the task names (a kubernetes-gpu hot cluster's pods: `local`). */
  executeWith?: string;
  /** Hot clusters this host is part of, announced in its heartbeats (set on a hot cluster's pods). */
  hotClusters?: string[];
  env?: NodeJS.ProcessEnv;
}

/** Starts the host and returns; its NATS connection keeps the process alive until SIGINT/SIGTERM stops it. */
export async function runExecutor(options: ExecutorCommandOptions): Promise<void> {
  const env = options.env ?? process.env;
  const { natsUrl, dataDir } = readCliConfig(env);
  if (!natsUrl) {
    throw new CliError(
      'NATS_URL is not set. A standalone executor host takes its tasks from the NATS JetStream server the control plane uses: ' +
        'set NATS_URL (e.g. NATS_URL=nats://127.0.0.1:4222) here and for `npm start`. Without NATS, `npm start` runs an embedded executor and needs no separate one.',
    );
  }
  const hostName = defaultHostName();
  // The host's module cache and work folders: private to it (sandboxed modules never see this folder).
  await mkdir(dataDir, { recursive: true, mode: 0o700 });
  await chmod(dataDir, 0o700);

  // A wrong token would make every task fail at download time; say so now instead. An unreachable control plane
  // is only a warning: hosts may well start before it.
  try {
    await createClient({ url: options.url, token: options.token }).request('{ viewer { name } }');
  } catch (error) {
    if (error instanceof ApiError && error.code === 'UNAUTHENTICATED') throw error;
    console.warn(`warning: ${(error as Error).message}; module downloads will fail until it is up`);
  }

  const { createJetStreamBus } = await import('../bus/jetstream');
  let bus: Awaited<ReturnType<typeof createJetStreamBus>>;
  try {
    bus = await createJetStreamBus({ url: natsUrl, name: `atelier-executor-${hostName}` });
  } catch (error) {
    throw new CliError((error as Error).message); // it says where and what to do (server/bus/jetstream.ts)
  }
  const executors = await executorsFromEnv(env);
  if (options.executeWith && !executors.some((e) => e.name === options.executeWith)) {
    throw new CliError(`--execute-with ${options.executeWith}: no such executor here (executors: ${executors.map((e) => e.name).join(', ')})`);
  }
  const graceMs = executorStopGraceMs(env);
  const host = createExecutorHost({
    bus,
    ackWaitMs: taskAckWaitMs(env),
    stopGraceMs: graceMs,
    maxLogBytes: maxLogBytes(env),
    maxInFlightBytes: taskInFlightBytes(env),
    registry: createExecutorRegistry(executors),
    pools: options.pools,
    hostName,
    artifacts: createHttpArtifactSource({
      url: options.url,
      token: options.token,
      cacheDir: path.join(dataDir, 'executor-cache'),
      retryForMs: parseDownloadRetryMs(env, (m) => new CliError(m)),
      warn: (m) => console.warn(`warning: ${m}`),
    }),
    workRoot: path.join(dataDir, 'work'),
    maxConcurrency: options.concurrency,
    gpus: options.gpus,
    executeWith: options.executeWith,
    holdsHotClusters: options.hotClusters?.length ? options.hotClusters : undefined,
  });

  surviveLostConnections((m) => console.warn(`warning: ${m}`));
  let stopping = false;
  const stop = async (signal: string) => {
    if (stopping) {
      console.log(`${signal} again: exiting now; unfinished attempts are redelivered to another host`);
      process.exit(1);
    }
    stopping = true;
    const grace = host.running() && graceMs ? `running attempts may finish within ${graceMs / 1000} s, the rest` : 'running attempts';
    console.log(`${signal}: stopping; ${grace} are handed back for redelivery (again to force)…`);
    try {
      await host.stop();
      await bus.close();
    } finally {
      process.exit(0);
    }
  };
  process.on('SIGINT', () => void stop('SIGINT'));
  process.on('SIGTERM', () => void stop('SIGTERM'));

  await host.start();
  console.log(
    `executor host ${hostName} serving pools: ${options.pools.join(', ')}\n` +
      `  executors  ${executors.map((e) => e.name).join(', ')}${options.concurrency ? ` (up to ${options.concurrency} tasks at once)` : ''}${options.gpus ? `, ${options.gpus} GPUs` : ''}\n` +
      (options.executeWith ? `  runs all   with ${options.executeWith}\n` : '') +
      (options.hotClusters?.length ? `  holds      hot cluster${options.hotClusters.length > 1 ? 's' : ''} ${options.hotClusters.join(', ')}\n` : '') +
      `  NATS       ${redactUrl(natsUrl)}\n` +
      `  modules    ${options.url}/artifacts, cached in ${path.join(dataDir, 'executor-cache')}`,
  );
}
