// What the CLI reads from the environment, in one place: each variable's name and default is written here once
// (the defaults shared with the control plane come from server/config/defaults.ts). Imports nothing heavy, as
// every command loads it.
import path from 'node:path';
import { ADMIN_TOKEN_FILE, DEFAULT_DATA_DIR, DEFAULT_HOST, DEFAULT_PORT } from '../config/defaults';

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

export function readCliConfig(env: NodeJS.ProcessEnv = process.env): CliConfig {
  const dataDir = path.resolve(env[CLI_ENV.dataDir] || DEFAULT_DATA_DIR);
  return {
    token: env[CLI_ENV.token] ? env[CLI_ENV.token]!.trim() : undefined,
    dataDir,
    adminTokenFile: path.join(dataDir, ADMIN_TOKEN_FILE),
    natsUrl: env[CLI_ENV.natsUrl] || undefined,
    debug: Boolean(env[CLI_ENV.debug]),
    ci: Boolean(env[CLI_ENV.ci]),
  };
}
