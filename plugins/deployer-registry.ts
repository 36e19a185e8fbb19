// The deployer registry: the one list of deployers the control plane drives, checked once at start-up (unique,
// non-empty names). Deployers are passed in explicitly; nothing registers itself by being imported. What a deployer
// says (its errors, its statuses' messages) reaches deployments' messages, events and logs through here, with every URL
// in it redacted (a service URL's `?token=`, `user:password@`), whatever the deployer printed.
import type { Deployer, DeploymentStatus } from './deployer-sdk';
import { redactUrls } from './redact-url';

/** `status` with the URLs in its messages redacted. */
function redactedStatus(status: DeploymentStatus): DeploymentStatus {
  return {
    ...status,
    message: typeof status.message === 'string' ? redactUrls(status.message) : status.message,
    revisions: status.revisions.map((r) => (typeof r.message === 'string' ? { ...r, message: redactUrls(r.message) } : r)),
  };
}

/** `error` (kept as it is: its class and code) with the URLs in its message redacted. */
function redactedError(error: unknown): unknown {
  if (error instanceof Error) error.message = redactUrls(error.message);
  return error;
}

/** `deployer` saying nothing with a secret of a URL in it. */
function redacting(deployer: Deployer): Deployer {
  const said = async <T>(call: () => Promise<T>): Promise<T> => {
    try {
      return await call();
    } catch (error) {
      throw redactedError(error);
    }
  };
  return {
    name: deployer.name,
    apply: (deployment, revision) => said(async () => redactedStatus(await deployer.apply(deployment, revision))),
    status: (id) => said(async () => redactedStatus(await deployer.status(id))),
    setTraffic: (id, split) => said(async () => redactedStatus(await deployer.setTraffic(id, split))),
    rollback: (id, to) => said(async () => redactedStatus(await deployer.rollback(id, to))),
    delete: (id) => said(() => deployer.delete(id)),
    ...(deployer.list ? { list: (installation: string) => said(() => deployer.list!(installation)) } : {}),
    ...(deployer.close ? { close: () => deployer.close!() } : {}),
  };
}

export interface DeployerRegistry {
  /** The deployer with this name; throws an Error listing the known names when there is none. */
  get(name: string): Deployer;
  /** Known deployer names, in the order given. */
  names(): string[];
  /** Closes every deployer (deployments keep serving; see `Deployer.close`). */
  close(): Promise<void>;
}

export function createDeployerRegistry(deployers: Deployer[]): DeployerRegistry {
  const byName = new Map<string, Deployer>();
  deployers.forEach((deployer, index) => {
    const name = deployer?.name;
    if (typeof name !== 'string' || name.trim() === '') throw new Error(`deployer #${index} has no name: every deployer needs a non-empty, unique \`name\``);
    if (byName.has(name)) throw new Error(`deployer name "${name}" is used twice: deployer names must be unique`);
    byName.set(name, redacting(deployer));
  });
  const names = [...byName.keys()];
  return {
    get(name) {
      const deployer = byName.get(name);
      if (!deployer) throw new Error(`unknown deployer "${name}" (known deployers: ${names.map((n) => `"${n}"`).join(', ') || 'none'})`);
      return deployer;
    },
    names: () => [...names],
    close: async () => {
      await Promise.all([...byName.values()].map((d) => d.close?.()));
    },
  };
}
