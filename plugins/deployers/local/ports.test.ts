import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../../server/config';
import { DEFAULT_DEPLOY_PORTS, parsePortRange, settingsPortProblem } from './ports';

describe('the ports a local deployment may name', () => {
  it('come from ATELIER_LOCAL_DEPLOY_PORTS (default 8100-8199); a bad range is refused naming the variable', () => {
    expect(loadConfig({}).localDeployPorts).toEqual(DEFAULT_DEPLOY_PORTS);
    expect(loadConfig({ ATELIER_LOCAL_DEPLOY_PORTS: '9000-9009' }).localDeployPorts).toEqual({ from: 9000, to: 9009 });
    expect(parsePortRange('9000')).toEqual({ from: 9000, to: 9000 });
    for (const bad of ['9009-9000', '0-10', '1-70000', 'http', '80,443'])
      expect(() => parsePortRange(bad)).toThrow(/ATELIER_LOCAL_DEPLOY_PORTS must be a port range FROM-TO/);
  });

  it('settings.port: absent, or a whole number within the range', () => {
    expect(settingsPortProblem(undefined, DEFAULT_DEPLOY_PORTS)).toBeNull();
    expect(settingsPortProblem(8150, DEFAULT_DEPLOY_PORTS)).toBeNull();
    for (const bad of [5432, 4222, 8200, 8150.5, '8150', -1])
      expect(settingsPortProblem(bad, DEFAULT_DEPLOY_PORTS)).toMatch(/settings.port must be a port from 8100 to 8199 .*ATELIER_LOCAL_DEPLOY_PORTS/);
  });
});
