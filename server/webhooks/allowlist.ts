// Where webhooks may post: the URLs whose origin matches a pattern of ATELIER_WEBHOOK_ALLOWLIST. Checked when a
// webhook is created or changed, and again before every POST (the list may have changed since).
import { AtelierError } from '../errors';

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

/** Why `raw` may not be a webhook URL under `allowlist`, or null when it may. */
export function urlProblem(raw: string, allowlist: string[]): string | null {
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
  return null;
}

/** Throws URL_NOT_ALLOWED (a typed error naming the variable) unless `raw` is an allowed webhook URL; returns it normalised. */
export function checkWebhookUrl(raw: string, allowlist: string[]): string {
  const problem = urlProblem(raw, allowlist);
  if (problem) throw new AtelierError('URL_NOT_ALLOWED', problem, [{ path: 'url', message: problem }]);
  return new URL(raw).toString();
}
