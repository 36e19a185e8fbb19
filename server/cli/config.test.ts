import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { DEFAULT_URL, readCliConfig } from './config';

describe('readCliConfig', () => {
  it('defaults to the control plane `npm start` runs here, and its data dir', () => {
    const config = readCliConfig({});
    expect(DEFAULT_URL).toBe('http://127.0.0.1:4000');
    expect(config).toEqual({
      token: undefined,
      dataDir: path.resolve('.atelier'),
      adminTokenFile: path.resolve('.atelier', 'admin-token'),
      natsUrl: undefined,
      debug: false,
      ci: false,
    });
  });

  it('reads each variable under its one name', () => {
    const config = readCliConfig({ ATELIER_TOKEN: ' atl_x \n', ATELIER_DATA_DIR: '/srv/atelier', NATS_URL: 'nats://n:4222', ATELIER_DEBUG: '1', CI: 'true' });
    expect(config).toEqual({
      token: 'atl_x',
      dataDir: '/srv/atelier',
      adminTokenFile: '/srv/atelier/admin-token',
      natsUrl: 'nats://n:4222',
      debug: true,
      ci: true,
    });
  });
});
