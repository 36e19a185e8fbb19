// Every environment variable the configuration readers take, found in their source (so a variable added later is
// checked without anyone remembering to): garbage in it refuses the start with a ConfigError that names it, never a
// stack trace or a silent default; and every variable the server reads is documented for the operator.
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig, moduleIsolation } from './index';
import { taskAckWaitMs } from './parse';

const root = path.resolve(__dirname, '..', '..');
const read = (file: string) => readFileSync(path.join(root, file), 'utf8');
const productionFiles = (dir: string): string[] =>
  readdirSync(path.join(root, dir), { recursive: true, encoding: 'utf8' })
    .filter((f) => /\.(ts|js|mjs)$/.test(f) && !/\.test\.ts$/.test(f))
    .map((f) => path.join(dir, f));

/** Names read from an environment: `env.NAME`, `env['NAME']`, or a reader given `(env, 'NAME'`. */
const namesRead = (text: string) =>
  [...text.matchAll(/\benv(?:\.([A-Z][A-Z0-9_]+)|\[['"]([A-Z][A-Z0-9_]+)['"]\]|, '([A-Z][A-Z0-9_]+)')/g)].map((m) => (m[1] ?? m[2] ?? m[3])!);

/** What the configuration readers (loadConfig and its helpers, the executor host's) read, all of it at start. */
const configFiles = readdirSync(path.join(root, 'server/config')).filter((f) => f.endsWith('.ts') && !f.endsWith('.test.ts'));
const configNames = [...new Set(configFiles.flatMap((f) => namesRead(read(`server/config/${f}`))))].filter((n) =>
  /^(ATELIER_|PORT$|HOST$|DATABASE_URL$|NATS_URL$)/.test(n),
);

/** Variables any text is a good value of: nothing to refuse. */
const freeText: Record<string, string> = {
  ATELIER_DATA_DIR: 'a directory path (created when missing; a read-only one is refused when opened)',
  ATELIER_OBJECTS_DIR: 'a directory path',
  ATELIER_GIT_HOOK_ACCOUNT: 'a service account name, looked up when an event arrives',
  ATELIER_GIT_REPOSITORIES: 'repository URLs or path prefixes, matched as text',
  ATELIER_S3_BUCKET: 'a bucket name, checked by S3 at start',
  ATELIER_S3_PREFIX: 'a key prefix',
  ATELIER_S3_REGION: 'a region name',
};
/** Variables read only when another says so: set alongside. */
const context: Record<string, Record<string, string>> = {
  ATELIER_S3_: { ATELIER_OBJECT_STORE: 's3', ATELIER_S3_BUCKET: 'atelier' },
  ATELIER_NATS_OBJECT_: { ATELIER_OBJECT_STORE: 'nats', NATS_URL: 'nats://127.0.0.1:4222' },
};
/** Named like a number: none of these is one. */
const numeric = /(_SECONDS|_MS|_MB|_KB|_HOURS|_DAYS|_BYTES|_MAX|_ATTEMPTS|_GPUS|_CONCURRENCY|_REPLICAS|_SUBSCRIPTIONS|_PER_TOKEN)$|^PORT$/;
const notNumbers = ['abc', '-5', '1e400', '99999999999999999999', ' '];
/** Named like a whole number: a fraction is not one either. */
const fractional = new Set(['ATELIER_DOWNLOAD_RETRY_SECONDS']);

function readAll(env: NodeJS.ProcessEnv) {
  loadConfig(env);
  moduleIsolation(env);
  taskAckWaitMs(env);
}

describe('configuration from the environment', () => {
  it('finds the variables in the readers’ source', () => {
    expect(configNames.length).toBeGreaterThan(50);
    expect(configNames).toEqual(expect.arrayContaining(['PORT', 'ATELIER_EMBEDDED_EXECUTOR', 'ATELIER_EXECUTOR_STOP_GRACE_SECONDS', 'ATELIER_S3_ENDPOINT']));
  });

  it('refuses garbage in every variable with a ConfigError that names it', () => {
    const accepted: string[] = [];
    for (const name of configNames.filter((n) => !(n in freeText))) {
      const base = Object.entries(context).find(([prefix]) => name.startsWith(prefix))?.[1] ?? {};
      for (const value of ['%% not valid %%', ...(numeric.test(name) ? notNumbers : []), ...(numeric.test(name) && !fractional.has(name) ? ['1.5'] : [])]) {
        try {
          readAll({ ...base, [name]: value });
          accepted.push(`${name}=${JSON.stringify(value)}`);
        } catch (error) {
          expect(error, `${name}=${JSON.stringify(value)}`).toBeInstanceOf(ConfigError);
          expect((error as Error).message, `${name}=${JSON.stringify(value)}`).toContain(name);
        }
      }
    }
    expect(accepted).toEqual([]);
  });

  it('starts with none set: every variable has a default', () => {
    expect(() => readAll({})).not.toThrow();
  });

  it('documents every variable the server reads in the README (or, for a plugin’s own, in docs/)', () => {
    const readme = read('README.md');
    const docs = readdirSync(path.join(root, 'docs'))
      .filter((f) => f.endsWith('.md'))
      .map((f) => read(`docs/${f}`))
      .join('\n');
    const serverNames = new Set(['server', 'plugins', 'executors'].flatMap(productionFiles).flatMap((f) => namesRead(read(f))));
    // Not the operator's: set by an executor host for the module it runs, a test's crash hook, the CLI's dev entry, or
    // the local deployer's router process (started with PATH alone: only its own tests set them).
    const notOperators = /^ATELIER_(PROGRESS_|TEST_|CLI_TSX$|ROUTER_)/;
    const missing = [...serverNames].filter(
      (n) => n.startsWith('ATELIER_') && !notOperators.test(n) && !readme.includes(`\`${n}\``) && !(docs.includes(`\`${n}\``) && !configNames.includes(n)),
    );
    expect(missing).toEqual([]);
  });
});
