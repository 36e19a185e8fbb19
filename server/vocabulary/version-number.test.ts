import { describe, expect, it } from 'vitest';
import { MAX_VERSION_NUMBER, versionNumber } from './version-number';

describe('versionNumber', () => {
  it('reads digits within an integer column, and nothing else', () => {
    expect(versionNumber('3')).toBe(3);
    expect(versionNumber('0')).toBe(0);
    expect(versionNumber(String(MAX_VERSION_NUMBER))).toBe(MAX_VERSION_NUMBER);
    for (const text of [String(MAX_VERSION_NUMBER + 1), '99999999999999999999', '-1', '1e3', ' 3', '3 ', '3.0', '', '０'])
      expect(versionNumber(text), text).toBeNull();
  });
});
