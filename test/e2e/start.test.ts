// `npm start` as a newcomer meets it (server/main.ts, as its own process on the embedded defaults): a port already in
// use is said in the operator's terms with what to do, and the caller's own mistakes (answered with their code) are
// not logged on the server as its errors with stacks.
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { createServer, type Server } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { GraphQLError } from 'graphql';
import type { YogaLogger } from 'graphql-yoga';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { notFound } from '../../server/errors';
import { apiLogger } from '../../server/http/yoga-logger';
import { apiClient } from '../harness/client';
import { type ControlPlaneProcess, startControlPlaneProcess } from '../harness/control-plane-process';
import { freePort } from '../harness/ports';

const token = 'atl_start-test-admin-token';
let dataDir: string;
let port: number;
let cp: ControlPlaneProcess | undefined;

beforeAll(async () => {
  dataDir = await mkdtemp(path.join(os.tmpdir(), 'atelier-start-'));
  port = await freePort();
});

afterAll(async () => {
  await cp?.kill();
  await rm(dataDir, { recursive: true, force: true });
});

const env = () => ({ PORT: String(port), ATELIER_DATA_DIR: dataDir, ATELIER_ADMIN_TOKEN: token });

describe('npm start', () => {
  it('says which port is taken and how to choose another, and exits, before it opens the database', async () => {
    const squatter: Server = createServer();
    await new Promise<void>((r) => squatter.listen(port, '127.0.0.1', r));
    try {
      const failed = await startControlPlaneProcess(env()).then(
        (started) => {
          cp = started;
          return '';
        },
        (error: Error) => error.message,
      );
      expect(failed).toContain(`Port ${port} on 127.0.0.1 is already in use`);
      expect(failed).toContain(`PORT=${port + 1} npm start`);
      expect(failed).not.toContain('Internal error emitted on the WebSocket server');
      // said before the (embedded) database was set up, not after the whole start: nothing written to the data directory
      expect(await readdir(dataDir)).toEqual([]);
    } finally {
      await new Promise((r) => squatter.close(r));
    }
  }, 180_000);

  it('says NATS cannot be reached, and exits, before it opens (and on a new data directory, migrates) the database', async () => {
    const closed = await freePort(); // nothing listens there
    const fresh = await mkdtemp(path.join(os.tmpdir(), 'atelier-start-nats-'));
    try {
      const failed = await startControlPlaneProcess({ ...env(), ATELIER_DATA_DIR: fresh, NATS_URL: `nats://127.0.0.1:${closed}` }).then(
        (started) => {
          cp = started;
          return '';
        },
        (error: Error) => error.message,
      );
      expect(failed).toMatch(new RegExp(`NATS.*127\\.0\\.0\\.1:${closed}`));
      // The bus is opened first: the embedded database was never made (nor its lock taken, nor migrations run).
      expect(await readdir(fresh)).toEqual([]);
    } finally {
      await rm(fresh, { recursive: true, force: true });
    }
  }, 180_000);

  it('answers a caller’s mistake with its code and keeps it out of the server’s error log', async () => {
    cp = await startControlPlaneProcess(env());
    const api = apiClient(cp.url, token);
    const res = await api.raw(`mutation { startRun(workflow: "no-such-workflow") { id } }`);
    expect(res.errors?.[0]?.extensions?.code).toBe('NOT_FOUND');
    await api.gql('{ viewer { name } }'); // its output is read after a later request has been answered
    expect(cp.output()).not.toMatch(/ERR|AtelierError|at notFound/);
  }, 180_000);
});

describe('the API logger', () => {
  const calls: string[] = [];
  const base: YogaLogger = {
    debug: () => calls.push('debug'),
    info: () => calls.push('info'),
    warn: () => calls.push('warn'),
    error: () => calls.push('error'),
  };
  it('logs a domain error (bare or wrapped by graphql-js) at debug, anything else as an error', () => {
    const logger = apiLogger('warn', base);
    logger.error(notFound('No workflow named x.'));
    logger.error(new GraphQLError('located', { originalError: notFound('No workflow named x.') }));
    logger.error(new Error('a bug'));
    logger.error('two', 'arguments');
    expect(calls).toEqual(['debug', 'debug', 'error', 'error']);
  });
});
