// The deployment service as the control plane configures it: its timings, the local deployer's ports
// (ATELIER_LOCAL_DEPLOY_PORTS), and a test's extra deployers or local deployer options on top.
import { type Config, defaultHostName } from '../config';
import { createDeploymentService, type DeploymentService, type DeploymentServiceOptions } from './service';

export function deploymentServiceFor(
  config: Config,
  parts: Pick<DeploymentServiceOptions, 'db' | 'store' | 'bus' | 'log' | 'afterCommit' | 'changes' | 'metrics'>,
  extra: Pick<DeploymentServiceOptions, 'deployers' | 'localDeployer'> = {},
): DeploymentService {
  return createDeploymentService({
    ...parts,
    dataDir: config.dataDir,
    pollMs: config.deploymentPollMs,
    leaseMs: config.deploymentLeaseMs,
    statsMs: config.deploymentStatsMs,
    orphanGraceMs: config.deploymentOrphanGraceMs,
    stopOrphans: config.deploymentStopOrphans,
    deployers: extra.deployers,
    localDeployer: { ports: config.localDeployPorts, ...extra.localDeployer },
    replica: `${defaultHostName()}-${process.pid}`,
  });
}
