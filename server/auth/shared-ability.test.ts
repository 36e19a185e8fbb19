// Requests built from the same identity, grants and scopes share one ability; any difference builds another.
import { subject } from '@casl/ability';
import { describe, expect, it } from 'vitest';
import { sharedAbilityFor } from './ability';

describe('sharedAbilityFor', () => {
  it('shares one ability between the same inputs, and never between different ones', () => {
    const dana = { id: 'd', role: 'member' as const };
    const a = sharedAbilityFor(dana, { domains: ['production'] }, null);
    expect(sharedAbilityFor(dana, { domains: ['production'] }, null)).toBe(a);
    const ungranted = sharedAbilityFor(dana, { domains: [] }, null);
    const scoped = sharedAbilityFor(dana, { domains: ['production'] }, ['read:Module']);
    const admin = sharedAbilityFor({ id: 'd', role: 'admin' }, { domains: ['production'] }, null);
    expect(new Set([a, ungranted, scoped, admin]).size).toBe(4);
    const production = subject('Run', { domain: 'production' }) as never;
    expect(a.can('read', production, 'events')).toBe(true);
    expect(ungranted.can('read', production, 'events')).toBe(false);
    expect(scoped.can('read', production, 'events')).toBe(false);
  });
});
