// The typed readers every environment variable goes through: each names its variable and says what to write when
// the value is wrong, so a start with a bad value is refused instead of running on a silent default.

import { isIP } from 'node:net';

/** The refusal of a bad configuration value: `npm start` and `atelier executor` print its message, never a stack. */
export class ConfigError extends Error {}

/**
 * A whole number from `min` to `max` (both required: an unbounded value overflows the timers and byte counts it
 * feeds); unset or empty gives `fallback`.
 */
export function int(env: NodeJS.ProcessEnv, name: string, fallback: number, min: number, max: number, what = ''): number {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  const n = Number(raw.trim());
  if (raw.trim() === '' || !Number.isInteger(n) || n < min || n > max)
    throw new ConfigError(`${name}=${raw} is not a whole number from ${min} to ${max}${what ? ` (${what})` : ''}: write one, or unset it for ${fallback}.`);
  return n;
}

const truthy = ['1', 'true', 'yes', 'on'];
const falsy = ['0', 'false', 'no', 'off'];

/** A switch: 1/true/yes/on or 0/false/no/off; unset or empty gives `fallback`. Anything else is refused, not read as off. */
export function flag(env: NodeJS.ProcessEnv, name: string, fallback: boolean): boolean {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  const value = raw.trim().toLowerCase();
  if (truthy.includes(value)) return true;
  if (falsy.includes(value)) return false;
  throw new ConfigError(`${name}=${raw} is not a switch: write true or false (or 1 or 0), or unset it for ${fallback}.`);
}

/** An http(s) URL with a host, without a trailing slash; unset or empty gives undefined. */
export function httpUrl(env: NodeJS.ProcessEnv, name: string, example: string): string | undefined {
  const raw = env[name]?.trim();
  if (!raw) return undefined;
  let url: URL | null = null;
  try {
    url = new URL(raw);
  } catch {}
  if (!url || !['http:', 'https:'].includes(url.protocol) || !url.hostname)
    throw new ConfigError(`${name} must be an http(s):// URL such as ${example} (got "${raw}").`);
  return raw.replace(/\/+$/, '');
}

/** A host name or IP address to listen on (no scheme, port or spaces); unset or empty gives `fallback`. */
export function listenHost(env: NodeJS.ProcessEnv, name: string, fallback: string): string {
  const raw = env[name]?.trim();
  if (!raw) return fallback;
  if (!/^[A-Za-z0-9._:%-]+$|^\[[0-9A-Fa-f:.%]+\]$/.test(raw) || /^\d+$/.test(raw))
    throw new ConfigError(`${name} is the interface to listen on, a host name or IP address such as 127.0.0.1 or 0.0.0.0 (got "${raw}"); the port is PORT.`);
  return raw.replace(/^\[(.*)\]$/, '$1');
}

/** Names an executor pool may have (they become NATS subject tokens and appear in specs). */
const poolNameRe = /^[A-Za-z0-9][A-Za-z0-9_.-]*$/;

/** A comma-separated list of pool names; unset or empty gives `fallback`. */
export function poolList(env: NodeJS.ProcessEnv, name: string, fallback: string[]): string[] {
  const listed = (env[name] ?? '')
    .split(',')
    .map((p) => p.trim())
    .filter(Boolean);
  const bad = listed.filter((p) => !poolNameRe.test(p));
  if (bad.length)
    throw new ConfigError(
      `${name} is a comma-separated list of pool names (letters, digits, ., - and _), such as local,gpu-a100; ${bad.map((b) => `"${b}"`).join(', ')} is not one.`,
    );
  return listed.length ? listed : fallback;
}

/**
 * ATELIER_EXECUTOR_STOP_GRACE_SECONDS: on SIGTERM/SIGINT, how long attempts already running on an executor host (the
 * standalone `atelier executor` or the control plane's embedded one) may finish and report before the rest are
 * stopped and handed back (unset: 0, at once). Keep it below the supervisor's kill timeout.
 */
export function executorStopGraceMs(env: NodeJS.ProcessEnv): number {
  return int(env, 'ATELIER_EXECUTOR_STOP_GRACE_SECONDS', 0, 0, 3600, 'seconds running attempts may finish after SIGTERM before they are handed back') * 1000;
}

/**
 * ATELIER_TASK_ACK_WAIT_SECONDS: how long JetStream waits for a standalone host's ack (or a working heartbeat) before
 * it redelivers a task (unset: the bus default, 30 s). Tests that kill hosts and wait out the redelivery set it lower.
 */
export function taskAckWaitMs(env: NodeJS.ProcessEnv): number | undefined {
  if (!env.ATELIER_TASK_ACK_WAIT_SECONDS) return undefined;
  return int(env, 'ATELIER_TASK_ACK_WAIT_SECONDS', 30, 3, 3600, "seconds a task waits for its host's ack before JetStream redelivers it") * 1000;
}

/**
 * ATELIER_TASK_IN_FLIGHT_MB: the most bytes of task messages an executor host (standalone or embedded) holds per pool,
 * taken off the bus and not yet acked (unset: the host's default, BUS_DEFAULTS.hostTaskInFlightBytes).
 */
export function taskInFlightBytes(env: NodeJS.ProcessEnv): number | undefined {
  if (!env.ATELIER_TASK_IN_FLIGHT_MB) return undefined;
  return int(env, 'ATELIER_TASK_IN_FLIGHT_MB', 64, 1, 64 * 1024, 'MiB of task messages an executor host holds per pool') * 1024 * 1024;
}

/**
 * A comma-separated list of IP addresses and CIDR ranges, IPv4 or IPv6 (`10.0.0.0/8,::1`); unset or empty gives none.
 * IPv4-mapped IPv6 (`::ffff:10.0.0.1`) matches its IPv4 address either way round.
 */
export function addressRanges(env: NodeJS.ProcessEnv, name: string, what: string): string[] {
  const listed = (env[name] ?? '')
    .split(',')
    .map((e) => e.trim())
    .filter(Boolean);
  const bad = listed.filter((entry) => {
    const [address = '', prefix, extra] = entry.split('/');
    const family = isIP(address);
    return !family || extra !== undefined || (prefix !== undefined && !(/^\d{1,3}$/.test(prefix) && Number(prefix) <= (family === 4 ? 32 : 128)));
  });
  if (bad.length)
    throw new ConfigError(
      `${name} is a comma-separated list of IP addresses and CIDR ranges (${what}), such as 10.0.0.0/8,192.168.1.10,fd00::/8; ${bad.map((b) => `"${b}"`).join(', ')} is not one.`,
    );
  return listed;
}

/**
 * ATELIER_MAX_LOG_BYTES: the most bytes of log lines an executor host (standalone or embedded) publishes for one
 * attempt; past it the rest is dropped, with a line saying so and, when the attempt ends, how many bytes were
 * dropped. It bounds what a module that floods its output costs the bus, the database and live viewers
 * (unset: the host's default, 10 MiB). The control plane holds every host to it where it records events (plus room for
 * a host's own lines: server/orchestrator/log-cap.ts), so a host that ignores it cannot fill the database.
 */
export function maxLogBytes(env: NodeJS.ProcessEnv): number | undefined {
  if (!env.ATELIER_MAX_LOG_BYTES) return undefined;
  return int(env, 'ATELIER_MAX_LOG_BYTES', 10 * 1024 * 1024, 1024, 1024 ** 3, "bytes of one attempt's log lines kept");
}

/**
 * ATELIER_MAX_LOG_LINES: the most log lines the control plane stores for one attempt (plus room for a host's own lines:
 * server/orchestrator/log-cap.ts), beside ATELIER_MAX_LOG_BYTES: a host sending tiny lines, each its own event, would
 * otherwise stay under the byte cap and still write a row per line. Unset: DEFAULT_MAX_LOG_LINES.
 */
export function maxLogLines(env: NodeJS.ProcessEnv): number | undefined {
  if (!env.ATELIER_MAX_LOG_LINES) return undefined;
  return int(env, 'ATELIER_MAX_LOG_LINES', 200_000, 100, 100_000_000, 'log lines of one attempt kept');
}
