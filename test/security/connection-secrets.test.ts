// Connection URLs carry credentials (DATABASE_URL's password, NATS_URL's user and password or token), and what the
// control plane prints (its start-up banner, a configuration error, "cannot reach" errors) goes to terminals, log
// files and CI logs: none of it may carry them. The real `atelier start`, as a process.
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { runCli } from '../harness/cli';
import { startControlPlaneProcess } from '../harness/control-plane-process';
import { type NatsServer, startNats } from '../harness/nats';
import { seedEmbeddedDatabase } from '../harness/pglite-template';
import { freePort } from '../harness/ports';

const SECRET = 'pw-Zq8sEcReT';
let nats: NatsServer;
let dataDir: string;
beforeAll(async () => {
  nats = await startNats();
  dataDir = await mkdtemp(path.join(os.tmpdir(), 'atelier-secrets-'));
  // A migrated copy: each `atelier start` with a NATS_URL opens the embedded database first, and the first would
  // otherwise migrate an empty PGlite (~8 s of CPU) before finding NATS unreachable.
  await seedEmbeddedDatabase(dataDir);
}, 60_000);
afterAll(async () => {
  await nats?.stop();
  await rm(dataDir, { recursive: true, force: true });
});

const start = (env: Record<string, string>) => runCli({ url: 'http://127.0.0.1:1', token: null }, ['start'], { ATELIER_DATA_DIR: dataDir, PORT: '0', ...env });

it('a configuration or connection error names the URL without its password', async () => {
  const closed = await freePort();
  const cases = [
    { DATABASE_URL: `postgress://atelier:${SECRET}@127.0.0.1:${closed}/atelier` }, // a scheme's typo
    { DATABASE_URL: `postgres://atelier:${SECRET}@127.0.0.1:${closed}/atelier` }, // nothing listens there
    { NATS_URL: `nat://atelier:${SECRET}@127.0.0.1:${closed}` },
    { NATS_URL: `nats://atelier:${SECRET}@127.0.0.1:${closed}` }, // nothing listens there
    { NATS_URL: `nats://${SECRET}@127.0.0.1:${closed}` }, // a token
  ] as Record<string, string>[];
  // Started side by side, each on a data directory of its own (the embedded database is one process's at a time).
  const dirs = cases.map((_, i) => path.join(dataDir, `case-${i}`));
  await Promise.all(dirs.map((dir) => seedEmbeddedDatabase(dir)));
  const results = await Promise.all(cases.map((env, i) => start({ ...env, ATELIER_DATA_DIR: dirs[i]! })));
  for (const [i, env] of cases.entries()) {
    const r = results[i]!;
    expect(r.code, JSON.stringify(env)).not.toBe(0);
    expect(`${r.stdout}${r.stderr}`, JSON.stringify(env)).toMatch(/127\.0\.0\.1/);
    expect(`${r.stdout}${r.stderr}`, JSON.stringify(env)).not.toContain(SECRET);
  }
}, 120_000);

it('the start-up banner names NATS without its password', async () => {
  const url = nats.url.replace('nats://', `nats://atelier:${SECRET}@`);
  const plane = await startControlPlaneProcess({ NATS_URL: url, ATELIER_DATA_DIR: dataDir, PORT: String(await freePort()) });
  try {
    expect(plane.output()).toMatch(/NATS JetStream \(nats:\/\/atelier:\*\*\*@127\.0\.0\.1/);
    expect(plane.output()).not.toContain(SECRET);
  } finally {
    await plane.kill('SIGTERM');
  }
}, 180_000);

it('the CLI names an ATELIER_URL without its password when it cannot use it', async () => {
  const closed = await freePort();
  const r = await runCli({ url: `http://atelier:${SECRET}@127.0.0.1:${closed}`, token: 'atl_x' }, ['run', 'list']);
  expect(r.code).not.toBe(0);
  expect(r.stderr).toMatch(/http:\/\/atelier:\*\*\*@127\.0\.0\.1/);
  expect(`${r.stdout}${r.stderr}`).not.toContain(SECRET);
});
