// The executor plugins a host runs, in one list, configured from the environment. `local` (sandboxed unless
// ATELIER_MODULE_ISOLATION=none) and `noop` are always there; `databricks` joins when DATABRICKS_HOST is set (with a token or OAuth M2M credentials), and
// `kubernetes-gpu` when ATELIER_K8S_NAMESPACE is set (in-cluster auth, or the default kubeconfig; its hot clusters
// run ATELIER_K8S_HOST_IMAGE pods pointed at NATS_URL and ATELIER_PUBLIC_URL). The remote executors are imported
// only when configured: the Kubernetes client alone takes ~2 s to load, which every start and restart would pay.
import path from 'node:path';
import { createLocalExecutor } from '../executors/local';
import { createNoopExecutor } from '../executors/noop';
import type { Bus } from '../plugins/bus/types';
import { createExecutorHost, type ExecutorHost } from '../plugins/host';
import { createExecutorRegistry } from '../plugins/registry';
import type { Executor } from '../plugins/sdk';
import type { ObjectStore } from './artifacts/store';
import { type Config, ConfigError, moduleEnvironment, moduleIsolation } from './config';
import type { Service } from './lifecycle';

export async function executorsFromEnv(env: NodeJS.ProcessEnv = process.env): Promise<Executor[]> {
  const executors: Executor[] = [createLocalExecutor({ inheritEnv: moduleEnvironment(env), ...moduleIsolation(env) }), createNoopExecutor()];
  if (env.DATABRICKS_HOST) {
    const auth = env.DATABRICKS_TOKEN
      ? { token: env.DATABRICKS_TOKEN }
      : env.DATABRICKS_CLIENT_ID && env.DATABRICKS_CLIENT_SECRET
        ? { clientId: env.DATABRICKS_CLIENT_ID, clientSecret: env.DATABRICKS_CLIENT_SECRET }
        : null;
    if (!auth) throw new ConfigError('DATABRICKS_HOST is set but no credentials: set DATABRICKS_TOKEN, or DATABRICKS_CLIENT_ID and DATABRICKS_CLIENT_SECRET.');
    const { createDatabricksExecutor } = await import('../executors/databricks');
    try {
      const listed = (raw: string | undefined) =>
        raw
          ? raw
              .split(',')
              .map((e) => e.trim())
              .filter(Boolean)
          : undefined;
      executors.push(
        createDatabricksExecutor({
          host: env.DATABRICKS_HOST,
          auth,
          stagingDir: env.ATELIER_DATABRICKS_STAGING_DIR,
          existingClusterIds: listed(env.ATELIER_DATABRICKS_CLUSTER_IDS),
          taskClusterFields: listed(env.ATELIER_DATABRICKS_TASK_CLUSTER_FIELDS),
        }) as Executor,
      );
    } catch (error) {
      throw new ConfigError(`${(error as Error).message} (set ATELIER_DATABRICKS_STAGING_DIR to a /Volumes/… path)`);
    }
  }
  if (env.ATELIER_K8S_NAMESPACE) {
    const { createKubernetesGpuExecutor } = await import('../executors/kubernetes-gpu');
    executors.push(
      createKubernetesGpuExecutor({
        namespace: env.ATELIER_K8S_NAMESPACE,
        inCluster: Boolean(env.KUBERNETES_SERVICE_HOST),
        image: env.ATELIER_K8S_IMAGE || undefined,
        artifactBaseUrl: env.ATELIER_PUBLIC_URL || env.ATELIER_URL || undefined,
        tokenSecret: env.ATELIER_K8S_TOKEN_SECRET ? { name: env.ATELIER_K8S_TOKEN_SECRET, key: 'token' } : undefined,
        // Hot clusters: executor-host pods that reach NATS and the control plane themselves.
        hostImage: env.ATELIER_K8S_HOST_IMAGE || undefined,
        natsUrl: env.NATS_URL || undefined,
        natsSecret: env.ATELIER_K8S_NATS_SECRET ? { name: env.ATELIER_K8S_NATS_SECRET, key: 'url' } : undefined,
        controlPlaneUrl: env.ATELIER_PUBLIC_URL || env.ATELIER_URL || undefined,
        serviceAccounts: (env.ATELIER_K8S_SERVICE_ACCOUNTS || '')
          .split(',')
          .map((e) => e.trim())
          .filter(Boolean),
      }) as Executor,
    );
  }
  return executors;
}

/** How an embedded host's name ends (`HOSTNAME-PID-RANDOM-embedded`, unique to each start): on the embedded database, one of an earlier start is gone. */
export const EMBEDDED_HOST_SUFFIX = '-embedded';

/** An executor host inside the control plane, taking the configured pools' tasks from the same bus. */
export function embeddedExecutorHost(
  config: Config,
  options: { bus: Bus; store: ObjectStore; executors: Executor[] | undefined; hostName: string; log: (message: string) => void },
): Service {
  let host: ExecutorHost | undefined;
  return {
    name: 'embedded executor host',
    async start() {
      host = createExecutorHost({
        bus: options.bus,
        registry: createExecutorRegistry(options.executors ?? (await executorsFromEnv())),
        pools: config.pools,
        hostName: options.hostName,
        artifacts: { fetch: (digest) => options.store.path(digest) },
        workRoot: path.join(config.dataDir, 'work'),
        gpus: config.executorGpus,
        maxConcurrency: config.executorConcurrency,
        maxInFlightBytes: config.executorTaskInFlightBytes,
        // The standalone host's grace too (ATELIER_EXECUTOR_STOP_GRACE_SECONDS): on SIGTERM running attempts may finish.
        stopGraceMs: config.executorStopGraceMs,
        maxLogBytes: config.executorMaxLogBytes,
        warn: (m) => options.log(`executor host: ${m}`),
      });
      await host.start();
    },
    stop: async () => host?.stop(),
  };
}
