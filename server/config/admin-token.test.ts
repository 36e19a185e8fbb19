import { describe, expect, it } from 'vitest';
import { loadConfig, MIN_ADMIN_TOKEN_LENGTH } from './index';

describe('ATELIER_ADMIN_TOKEN', () => {
  it('is refused when short enough to guess online (no limit on wrong tokens), or with spaces; unset, one is minted', () => {
    for (const weak of ['admin', 'changeme', 'a'.repeat(MIN_ADMIN_TOKEN_LENGTH - 1), `${'a'.repeat(MIN_ADMIN_TOKEN_LENGTH)} b`])
      expect(() => loadConfig({ ATELIER_ADMIN_TOKEN: weak })).toThrow(/ATELIER_ADMIN_TOKEN must be at least 24 characters.*openssl rand -base64 32/);
    expect(loadConfig({ ATELIER_ADMIN_TOKEN: 'atl_start-test-admin-token' }).adminToken).toBe('atl_start-test-admin-token');
    expect(loadConfig({}).adminToken).toBeUndefined();
  });
});
