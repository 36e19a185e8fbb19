import { describe, expect, it } from 'vitest';
import { addressProblem, embeddedIPv4, parseOutboundAllow } from './outbound';

describe('addressProblem', () => {
  it('refuses loopback, link-local, private, shared, reserved and multicast addresses, also inside IPv6', () => {
    for (const ip of ['127.0.0.1', '0.0.0.0', '10.1.2.3', '172.16.0.1', '192.168.1.1', '169.254.169.254', '100.64.0.1', '224.0.0.1', '255.255.255.255'])
      expect(addressProblem(ip, []), ip).not.toBeNull();
    for (const ip of ['::1', '::', 'fd00::1', 'fe80::1', '::ffff:127.0.0.1', '::ffff:a9fe:a9fe', '64:ff9b::a9fe:a9fe', '2002:7f00:1::'])
      expect(addressProblem(ip, []), ip).not.toBeNull();
  });
  it('lets public addresses through, and private ones only as the admin lists them', () => {
    for (const ip of ['8.8.8.8', '2606:4700::1']) expect(addressProblem(ip, []), ip).toBeNull();
    expect(addressProblem('10.1.2.3', ['10.0.0.0/8'])).toBeNull();
    expect(addressProblem('::ffff:10.1.2.3', ['10.0.0.0/8'])).toBeNull();
    expect(addressProblem('11.0.0.1', ['10.0.0.0/8'])).toBeNull();
    expect(addressProblem('127.0.0.2', ['127.0.0.1'])).not.toBeNull();
    expect(addressProblem('169.254.169.254', 'all')).toBeNull();
  });
  it('reads the IPv4 address an IPv6 one carries', () => {
    expect(embeddedIPv4('::ffff:7f00:1')).toBe('127.0.0.1');
    expect(embeddedIPv4('2606:4700::1')).toBeNull();
  });
  it('refuses a list entry that is not an address or range', () => {
    const fail = (m: string) => new Error(m);
    expect(parseOutboundAllow('10.0.0.0/8, 127.0.0.1,::1', fail)).toEqual(['10.0.0.0/8', '127.0.0.1', '::1']);
    expect(parseOutboundAllow('all', fail)).toBe('all');
    expect(() => parseOutboundAllow('intranet', fail)).toThrow(/ATELIER_OUTBOUND_ALLOW_PRIVATE: "intranet"/);
    expect(() => parseOutboundAllow('10.0.0.0/33', fail)).toThrow(/not an address/);
  });
});
