import { describe, expect, it } from 'vitest';
import { createPeerResolver, normaliseAddress } from './peer';

const PROXIES = ['10.0.0.0/8', '2001:db8:ffff::/48', '192.168.1.5'];

describe('the peer of a request', () => {
  const { resolve } = createPeerResolver(PROXIES);

  it('is the TCP peer, with X-Forwarded-For ignored, when that peer is not a trusted proxy', () => {
    expect(resolve('203.0.113.9', '198.51.100.1')).toBe('203.0.113.9');
    expect(resolve('::ffff:203.0.113.9', '198.51.100.1')).toBe('203.0.113.9');
    expect(createPeerResolver([]).resolve('10.1.2.3', '198.51.100.1')).toBe('10.1.2.3');
  });

  it('is the right-most address a trusted proxy names that is not itself a trusted proxy', () => {
    expect(resolve('10.1.2.3', '198.51.100.1')).toBe('198.51.100.1');
    // The left-most is whatever the client wrote: never believed over what the proxies appended.
    expect(resolve('10.1.2.3', '1.1.1.1, 198.51.100.1')).toBe('198.51.100.1');
    expect(resolve('10.1.2.3', ['1.1.1.1', '198.51.100.1, 10.9.9.9'])).toBe('198.51.100.1');
    expect(resolve('::ffff:192.168.1.5', '198.51.100.1, 10.9.9.9')).toBe('198.51.100.1');
    expect(resolve('2001:db8:ffff:1::1', '[2001:DB8:1::7]:443')).toBe('2001:db8:1::7');
    expect(resolve('10.1.2.3', '198.51.100.1:51234')).toBe('198.51.100.1');
    expect(resolve('10.1.2.3', '::ffff:198.51.100.1')).toBe('198.51.100.1');
  });

  it('stops at the last trusted hop when the chain names something that is not an address, or only proxies', () => {
    expect(resolve('10.1.2.3', 'unknown, 10.9.9.9')).toBe('10.9.9.9');
    expect(resolve('10.1.2.3', '')).toBe('10.1.2.3');
    expect(resolve('10.1.2.3', '10.7.7.7, 10.9.9.9')).toBe('10.7.7.7');
    expect(resolve('10.1.2.3', undefined)).toBe('10.1.2.3');
  });
});

describe('normaliseAddress', () => {
  it('gives IPv4-mapped IPv6 as IPv4, IPv6 in lower case, and nothing for what is not an address', () => {
    expect(normaliseAddress('::FFFF:10.0.0.1')).toBe('10.0.0.1');
    expect(normaliseAddress('2001:DB8::1')).toBe('2001:db8::1');
    expect(normaliseAddress('unknown')).toBeUndefined();
    expect(normaliseAddress(undefined)).toBeUndefined();
  });
});
