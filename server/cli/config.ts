// What the CLI reads from the environment, in one place: each variable's name and default is written here once
// (the defaults shared with the control plane come from server/config/defaults.ts). Imports nothing heavy, as
// every command loads it.
import { readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { ADMIN_TOKEN_FILE, DEFAULT_DATA_DIR, DEFAULT_HOST, DEFAULT_PORT, SERVER_URL_FILE } from '../config/defaults';

/** The environment variables the CLI reads (commander reads the first two itself, as option fallbacks). */
export const CLI_ENV = {
  url: 'ATELIER_URL',
  token: 'ATELIER_TOKEN',
  dataDir: 'ATELIER_DATA_DIR',
  natsUrl: 'NATS_URL',
  debug: 'ATELIER_DEBUG',
  ci: 'CI',
} as const;

/** The control plane `npm start` runs on this machine with no settings. */
export const DEFAULT_URL = `http://${DEFAULT_HOST}:${DEFAULT_PORT}`;

export interface CliConfig {
  /** The control plane to talk to: ATELIER_URL, else the URL a control plane running on this machine wrote to its data dir, else the default. */
  url: string;
  /** Where `url` came from, for messages. */
  urlSource: 'ATELIER_URL' | 'data dir' | 'default';
  /** An API token from the environment (trimmed), if any. */
  token?: string;
  /** The control plane's data dir on this machine (absolute). */
  dataDir: string;
  /** The admin token a control plane on this machine saved. */
  adminTokenFile: string;
  /** The NATS server a standalone executor host takes its tasks from. */
  natsUrl?: string;
  /** Print stack traces of unexpected errors. */
  debug: boolean;
  /** Running under CI: no live-updating terminal output. */
  ci: boolean;
}

export function readCliConfig(env: NodeJS.ProcessEnv = process.env, cwd = process.cwd()): CliConfig {
  const given = env[CLI_ENV.dataDir];
  const dataDir = given ? path.resolve(cwd, given) : findDataDir(cwd);
  const written = readRunningUrl(dataDir);
  return {
    url: env[CLI_ENV.url] || written || DEFAULT_URL,
    urlSource: env[CLI_ENV.url] ? 'ATELIER_URL' : written ? 'data dir' : 'default',
    token: env[CLI_ENV.token] ? env[CLI_ENV.token]!.trim() : undefined,
    dataDir,
    adminTokenFile: path.join(dataDir, ADMIN_TOKEN_FILE),
    natsUrl: env[CLI_ENV.natsUrl] || undefined,
    debug: Boolean(env[CLI_ENV.debug]),
    ci: Boolean(env[CLI_ENV.ci]),
  };
}

/**
 * `.atelier` in `cwd`, else in the nearest folder above that has one of this user's, as git finds `.git`: the CLI
 * run from examples/iris finds the control plane `npm start` runs at the repository's root. Another user's folder
 * above is passed over: the URL file in it could send this user's ATELIER_TOKEN to a server of theirs.
 */
function findDataDir(cwd: string): string {
  const here = path.resolve(cwd, DEFAULT_DATA_DIR);
  if (statSync(here, { throwIfNoEntry: false })) return here;
  const uid = process.getuid?.();
  for (let dir = path.resolve(cwd); path.dirname(dir) !== dir; ) {
    dir = path.dirname(dir);
    const info = statSync(path.join(dir, DEFAULT_DATA_DIR), { throwIfNoEntry: false });
    if (info?.isDirectory() && (uid === undefined || info.uid === uid)) return path.join(dir, DEFAULT_DATA_DIR);
  }
  return here;
}

/** The URL a control plane running with this data dir wrote (see server/http/url-file.ts), if any. */
function readRunningUrl(dataDir: string): string | undefined {
  try {
    const url = readFileSync(path.join(dataDir, SERVER_URL_FILE), 'utf8').trim();
    return /^https?:\/\/\S+$/.test(url) ? url : undefined;
  } catch {
    return undefined;
  }
}
