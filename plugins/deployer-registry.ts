// The deployer registry: the one list of deployers the control plane drives, checked once at start-up (unique,
// non-empty names). Deployers are passed in explicitly; nothing registers itself by being imported.
import type { Deployer } from './deployer-sdk';

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
    byName.set(name, deployer);
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
