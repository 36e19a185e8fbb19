import { describe, expect, it } from 'vitest';
import { isUuid } from './uuid';

describe('isUuid', () => {
  it('tells ids from names and from anything else', () => {
    expect(isUuid('0B8E4A8E-6A0C-4D55-9A2A-3F1F2F0B8C11')).toBe(true);
    expect(isUuid('0b8e4a8e-6a0c-4d55-9a2a-3f1f2f0b8c11')).toBe(true);
    expect(isUuid('train')).toBe(false);
    expect(isUuid('0b8e4a8e-6a0c-4d55-9a2a-3f1f2f0b8c11x')).toBe(false);
    expect(isUuid('0b8e4a8e-6a0c-4d55-9a2a-3f1f2f0b8c1')).toBe(false);
    expect(isUuid(42)).toBe(false);
    expect(isUuid(undefined)).toBe(false);
  });
});
