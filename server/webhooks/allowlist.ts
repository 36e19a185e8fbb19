// Where webhooks may post: the URLs whose origin matches a pattern of ATELIER_WEBHOOK_ALLOWLIST. Checked when a
// webhook is created or changed, and again before every POST (the list may have changed since).
import { isIP } from 'node:net';
import { AtelierError } from '../errors';
import { addressProblem, type OutboundAllow } from '../net/outbound';

export const ALLOWLIST_VARIABLE = 'ATELIER_WEBHOOK_ALLOWLIST';

const defaultPort = (protocol: string) => (protocol === 'https:' ? '443' : '80');

/** Whether `url`'s origin matches `pattern` (`https://hooks.example.com`, `https://*.example.org`, `http://127.0.0.1:*`). */
export function matchesPattern(url: URL, pattern: string): boolean {
  const m = /^(https?):\/\/(.+?)(?::(\d+|\*))?$/.exec(pattern);
  if (!m) return false;
  const [, scheme, host, port] = m;
  if (url.protocol !== `${scheme}:`) return false;
  const portOk = port === '*' || (port ?? defaultPort(url.protocol)) === (url.port || defaultPort(url.protocol));
  const hostname = url.hostname.toLowerCase();
  const hostOk = host!.startsWith('*.') ? hostname.endsWith(host!.slice(1)) && hostname.length > host!.length - 1 : hostname === host;
  return portOk && hostOk;
}

/**
 * The addresses webhooks may reach besides public ones: the admin's private ranges, and the IP literals the
 * allowlist names exactly (`http://127.0.0.1:*` chooses loopback). A host name on the list is checked by the
 * addresses it resolves to at each POST, so a name that resolves to a private address is refused.
 */
export function webhookAddresses(allowlist: string[], allow: OutboundAllow): OutboundAllow {
  if (allow === 'all') return allow;
  const named = allowlist.flatMap((p) => {
    const host = /^https?:\/\/(\[[0-9a-f:.]+\]|[0-9.]+)(?::(?:\d+|\*))?\/?$/i.exec(p)?.[1]?.replace(/^\[(.*)\]$/, '$1');
    return host && isIP(host) ? [host] : [];
  });
  return [...allow, ...named];
}

/** Why `raw` may not be a webhook URL under `allowlist`, or null when it may (`allow`: see webhookAddresses). */
export function urlProblem(raw: string, allowlist: string[], allow: OutboundAllow = []): string | null {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    return `"${raw}" is not a URL; give an absolute http(s) URL such as https://hooks.example.com/atelier.`;
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') return `"${raw}" is not an http(s) URL.`;
  if (url.username || url.password) return 'A webhook URL may not carry credentials (user:password@); receivers verify the signature instead.';
  if (!allowlist.length)
    return `Webhooks may post nowhere yet: an operator sets ${ALLOWLIST_VARIABLE} (e.g. https://hooks.example.com) to the origins they may post to.`;
  if (!allowlist.some((p) => matchesPattern(url, p)))
    return `${url.origin} is not on ${ALLOWLIST_VARIABLE} (${allowlist.join(', ')}); ask an operator to add it, or use a URL on it.`;
  const literal = url.hostname.replace(/^\[(.*)\]$/, '$1');
  const problem = isIP(literal) ? addressProblem(literal, webhookAddresses(allowlist, allow)) : null;
  if (problem) return `${url.origin} is not a webhook target: ${problem}, or names the address exactly in ${ALLOWLIST_VARIABLE}.`;
  return null;
}

/** Throws URL_NOT_ALLOWED (a typed error naming the variable) unless `raw` is an allowed webhook URL; returns it normalised. */
export function checkWebhookUrl(raw: string, allowlist: string[], allow: OutboundAllow = []): string {
  const problem = urlProblem(raw, allowlist, allow);
  if (problem) throw new AtelierError('URL_NOT_ALLOWED', problem, [{ path: 'url', message: problem }]);
  return new URL(raw).toString();
}
