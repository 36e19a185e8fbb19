// The deployer registry: unique, non-empty names checked at start-up; an unknown name says which exist.
import { describe, expect, it } from 'vitest';
import { createDeployerRegistry } from '../../plugins/deployer-registry';
import type { Deployer } from '../../plugins/deployer-sdk';

const fake = (name: string, closed: string[] = []): Deployer => ({
  name,
  apply: async () => {
    throw new Error('unused');
  },
  status: async () => {
    throw new Error('unused');
  },
  setTraffic: async () => {
    throw new Error('unused');
  },
  rollback: async () => {
    throw new Error('unused');
  },
  delete: async () => undefined,
  close: async () => {
    closed.push(name);
  },
});

describe('deployer registry', () => {
  it('finds deployers by name and closes them all', async () => {
    const closed: string[] = [];
    const registry = createDeployerRegistry([fake('local', closed), fake('kserve', closed)]);
    expect(registry.names()).toEqual(['local', 'kserve']);
    expect(registry.get('kserve').name).toBe('kserve');
    expect(() => registry.get('seldon')).toThrow('unknown deployer "seldon" (known deployers: "local", "kserve")');
    await registry.close();
    expect(closed.sort()).toEqual(['kserve', 'local']);
  });

  it('refuses a missing or repeated name', () => {
    expect(() => createDeployerRegistry([fake('local'), fake('local')])).toThrow('used twice');
    expect(() => createDeployerRegistry([fake(' ')])).toThrow('has no name');
  });
});
