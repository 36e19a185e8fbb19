// kubernetes-gpu hot clusters: an apps/v1 Deployment of executor-host pods that take the cluster's pool tasks
// themselves. Starting waits for the first ready pod; both start and end are idempotent.
import type { HotClusterSpec } from '../../plugins/sdk';
import { type KubeApiError, toKubeError } from './api';
import { buildHotClusterDeployment, deploymentNameFor, HotClusterConfigError } from './manifest';
import type { KubeRuntime } from './runtime';
import { parseHotClusterSpec, SettingsError } from './settings';
import { formatMs } from './status';

export function createHotClusters(rt: KubeRuntime) {
  const { namespace, client, clock, sleep, retrying, statusPollMs, defaultGpus, options } = rt;
  /** A config or auth problem needs a person; everything else may clear when the control plane asks again. */
  const hotClusterError = (e: KubeApiError, what: string) =>
    new Error(`${what}: ${e.message}${e.kind === 'not-found' ? ` (does namespace ${namespace} exist?)` : ''}`);

  /** Aborted by close(): a start still waiting for its first ready pod stops waiting. */
  const closing = new AbortController();

  async function startHotCluster(cluster: HotClusterSpec) {
    let deployment: ReturnType<typeof buildHotClusterDeployment>;
    try {
      deployment = buildHotClusterDeployment(cluster, parseHotClusterSpec(cluster.spec, { gpus: defaultGpus, serviceAccounts: options.serviceAccounts }), {
        namespace,
        hostImage: options.hostImage,
        natsUrl: options.natsUrl,
        natsSecret: options.natsSecret,
        controlPlaneUrl: options.controlPlaneUrl,
        tokenSecret: options.tokenSecret,
      });
    } catch (err) {
      if (err instanceof SettingsError || err instanceof HotClusterConfigError) throw new Error(`kubernetes-gpu: ${err.message}`);
      throw err;
    }
    const name = deployment.metadata!.name!;
    const what = `kubernetes-gpu: hot cluster ${cluster.name}: creating Deployment ${name} in namespace ${namespace}`;
    try {
      await retrying(() => client.createDeployment(deployment), closing.signal);
    } catch (err) {
      const e = toKubeError(err, `creating Deployment ${name}`);
      // 409 AlreadyExists: started before (a repeated command, a restarted host); the Deployment is the cluster.
      if (e.kind !== 'conflict') throw hotClusterError(e, what);
    }
    // Held once a pod runs: the host's heartbeat then lists the cluster, and the control plane routes to it.
    const deadline = clock() + (options.hotClusterReadyMs ?? 10 * 60_000);
    for (;;) {
      let ready = 0;
      try {
        const current = await retrying(() => client.readDeployment(name), closing.signal);
        ready = current.status?.readyReplicas ?? 0;
      } catch (err) {
        const e = toKubeError(err, `reading Deployment ${name}`);
        if (e.kind === 'not-found') throw new Error(`kubernetes-gpu: hot cluster ${cluster.name}: Deployment ${name} was deleted while starting`);
        throw hotClusterError(e, `kubernetes-gpu: hot cluster ${cluster.name}: reading Deployment ${name}`);
      }
      if (ready > 0) return;
      if (closing.signal.aborted)
        throw new Error(`kubernetes-gpu: hot cluster ${cluster.name}: the executor closed before a pod of Deployment ${name} was ready`);
      if (clock() >= deadline) {
        throw new Error(
          `kubernetes-gpu: hot cluster ${cluster.name}: no pod of Deployment ${name} became ready in ${formatMs(options.hotClusterReadyMs ?? 10 * 60_000)} (see \`kubectl -n ${namespace} describe deployment ${name}\`); the Deployment is kept and checked again when the control plane repeats the start`,
        );
      }
      await sleep(Math.min(statusPollMs, 2_000), closing.signal);
    }
  }

  async function endHotCluster(clusterName: string) {
    const name = deploymentNameFor(clusterName);
    try {
      await retrying(() => client.deleteDeployment(name));
    } catch (err) {
      const e = toKubeError(err, `deleting Deployment ${name}`);
      if (e.kind !== 'not-found') throw hotClusterError(e, `kubernetes-gpu: hot cluster ${clusterName}: deleting Deployment ${name} in namespace ${namespace}`);
    }
  }

  return { startHotCluster, endHotCluster, close: () => closing.abort() };
}
