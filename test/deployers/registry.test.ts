// The deployer registry: unique, non-empty names checked at start-up; an unknown name says which exist.
import { describe, expect, it } from 'vitest';
import { createDeployerRegistry } from '../../plugins/deployer-registry';
import { type Deployer, DeployerError, type DeploymentStatus } from '../../plugins/deployer-sdk';

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

  it('lets no URL secret a deployer says through: its errors (class and code kept) and its statuses’ messages redacted', async () => {
    // A deployer's words become deployments' messages, events, GraphQL errors and logs that every viewer reads.
    const said = 'https://svc.example/atelier?token=T0KEN&x=1 and nats://u:PASSW0RD@nats:4222';
    const status: DeploymentStatus = {
      deploymentId: 'd',
      ready: false,
      url: 'http://127.0.0.1:1',
      traffic: { 1: 100 },
      message: `not ready: ${said}`,
      revisions: [{ number: 1, modelVersion: 'a/b/1', health: 'FAILED', restarts: 0, message: said }],
    };
    const talkative: Deployer = {
      name: 'talkative',
      apply: async () => status,
      status: async () => status,
      setTraffic: async () => {
        throw new DeployerError('BAD_SPLIT', `the service at ${said} refused`, 'talkative');
      },
      rollback: () => {
        throw new Error(`rollback: ${said}`); // thrown before any promise
      },
      delete: async () => {
        throw new Error(`delete: ${said}`);
      },
    };
    const deployer = createDeployerRegistry([talkative]).get('talkative');
    const secrets = /T0KEN|PASSW0RD/;
    for (const answer of [
      await deployer.apply({ id: 'd', name: 'd', model: 'a/b@c', domain: 'staging', settings: {} }, null as never),
      await deployer.status('d'),
    ]) {
      expect(answer.message).toContain('https://svc.example/atelier?token=***');
      expect(JSON.stringify(answer)).not.toMatch(secrets);
    }
    const refusal = await deployer.setTraffic('d', { 1: 100 }).catch((error) => error);
    expect(refusal).toBeInstanceOf(DeployerError);
    expect(refusal).toMatchObject({ code: 'BAD_SPLIT', deployer: 'talkative' });
    expect(refusal.message).toContain('nats://u:***@nats:4222');
    for (const failed of [deployer.rollback('d', 1), deployer.delete('d')]) await expect(failed).rejects.toThrow(/\*\*\*/);
    for (const failed of [deployer.rollback('d', 1), deployer.delete('d')]) await expect(failed).rejects.not.toThrow(secrets);
  });
});
