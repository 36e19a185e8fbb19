// The list-valued variables' readers (comma-separated origins, pools, counts per pool): each refuses a bad entry
// with a ConfigError that names the variable and shows what to write.
import { ConfigError } from './parse';

/** `scheme://host[:port]`, where host may start with `*.` and port may be `*`. */
const webhookPatternRe = /^https?:\/\/((\*\.)?[a-z0-9.-]+|\[[0-9a-f:]+\])(:(\d{1,5}|\*))?\/?$/i;

export function parseWebhookAllowlist(raw: string | undefined): string[] {
  const listed = (raw ?? '')
    .split(',')
    .map((o) => o.trim())
    .filter(Boolean);
  for (const pattern of listed)
    if (!webhookPatternRe.test(pattern))
      throw new ConfigError(
        `ATELIER_WEBHOOK_ALLOWLIST is a comma-separated list of origins or host patterns such as https://hooks.example.com,https://*.example.org,http://127.0.0.1:* (scheme, host and port or *; no path); "${pattern}" is not one.`,
      );
  return listed.map((p) => p.replace(/\/$/, '').toLowerCase());
}

export function parseCorsOrigins(raw: string | undefined): string[] {
  const listed = (raw ?? '')
    .split(',')
    .map((o) => o.trim())
    .filter(Boolean);
  return listed.map((origin) => {
    if (origin === '*') return origin;
    let url: URL | null = null;
    try {
      url = new URL(origin);
    } catch {}
    if (!url || !['http:', 'https:'].includes(url.protocol) || url.origin !== origin.replace(/\/$/, ''))
      throw new ConfigError(
        `ATELIER_CORS_ORIGINS is a comma-separated list of origins such as https://dash.example.com,http://localhost:5173 (scheme, host and port only; or * for any origin, without credentials); "${origin}" is not one.`,
      );
    return url.origin;
  });
}

export function parseHotClusterPools(raw: string | undefined): Record<string, string[] | '*'> | null {
  if (raw === undefined || raw.trim() === '') return null;
  const pools: Record<string, string[] | '*'> = {};
  for (const part of raw
    .split(',')
    .map((p) => p.trim())
    .filter(Boolean)) {
    const m = /^([A-Za-z0-9_.-]+)(?::([a-z0-9][a-z0-9-_.+]*))?$/.exec(part);
    if (!m)
      throw new ConfigError(`ATELIER_HOT_CLUSTER_POOLS: "${part}" should be a pool, or pool:team+team for some teams only (e.g. gpu-a100:vision+nlp,local).`);
    pools[m[1]!] = m[2] ? m[2].split('+').filter(Boolean) : '*';
  }
  return pools;
}

export function parsePoolCounts(name: string, raw: string | undefined, example: string): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const part of (raw ?? '')
    .split(',')
    .map((p) => p.trim())
    .filter(Boolean)) {
    const m = /^([A-Za-z0-9_.-]+)=(\d+)$/.exec(part);
    if (!m || Number(m[2]) < 1) throw new ConfigError(`${name}: "${part}" should look like pool=N with N ≥ 1 (e.g. ${example}).`);
    counts[m[1]!] = Number(m[2]);
  }
  return counts;
}
