// The deployers the control plane drives beside `local`, from the environment (server/deployers.ts): none by
// default, kserve when its namespace is set, one webhook deployer per entry of ATELIER_WEBHOOK_DEPLOYERS with its
// secret from a file or a variable; every mistake a ConfigError that says what to write.
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { ConfigError } from '../../server/config';
import { deployersFromEnv } from '../../server/deployers';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'atelier-deployers-env-'));
  await writeFile(path.join(dir, 'secret'), 's3cret-from-a-file\n');
  await writeFile(path.join(dir, 'empty'), '\n');
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

const names = async (env: NodeJS.ProcessEnv) => {
  const deployers = await deployersFromEnv(env);
  const list = deployers.map((d) => d.name);
  await Promise.all(deployers.map((d) => d.close?.()));
  return list;
};

it('adds none by default, kserve when its namespace is set, and a webhook deployer per entry', async () => {
  expect(await names({})).toEqual([]);
  expect(await names({ ATELIER_KSERVE_NAMESPACE: 'models', ATELIER_KSERVE_STORAGE_URI: 's3://models/{ref}' })).toEqual(['kserve']);
  const entries = [
    { name: 'serving-a', url: 'https://a.example.com/atelier', secretFile: path.join(dir, 'secret') },
    { name: 'serving-b', url: 'https://b.example.com/atelier', secretEnv: 'B_SECRET', previousSecretEnv: 'B_OLD' },
  ];
  expect(await names({ ATELIER_WEBHOOK_DEPLOYERS: JSON.stringify(entries), B_SECRET: 'new', B_OLD: 'old' })).toEqual(['serving-a', 'serving-b']);
});

it('refuses a malformed list, a missing or empty secret and a bad URL with what to write', async () => {
  const refused = (env: NodeJS.ProcessEnv) =>
    deployersFromEnv(env).then(
      () => 'accepted',
      (e) => (e instanceof ConfigError ? e.message : `not a ConfigError: ${e}`),
    );
  expect(await refused({ ATELIER_WEBHOOK_DEPLOYERS: '{name:' })).toMatch(/ATELIER_WEBHOOK_DEPLOYERS is not JSON .* JSON list like/);
  expect(await refused({ ATELIER_WEBHOOK_DEPLOYERS: '{"name":"a"}' })).toMatch(/is not a list/);
  expect(await refused({ ATELIER_WEBHOOK_DEPLOYERS: '[{"name":"a"}]' })).toMatch(/\[0\] needs a "name" and a "url"/);
  expect(await refused({ ATELIER_WEBHOOK_DEPLOYERS: '[{"name":"a","url":"https://a.example.com"}]' })).toMatch(/needs "secretFile" or "secretEnv"/);
  expect(await refused({ ATELIER_WEBHOOK_DEPLOYERS: JSON.stringify([{ name: 'a', url: 'https://a.example.com', secretEnv: 'NOPE' }]) })).toMatch(
    /NOPE \(its secret\) is not set/,
  );
  expect(
    await refused({ ATELIER_WEBHOOK_DEPLOYERS: JSON.stringify([{ name: 'a', url: 'https://a.example.com', secretFile: path.join(dir, 'empty') }]) }),
  ).toMatch(/is empty/);
  expect(
    await refused({ ATELIER_WEBHOOK_DEPLOYERS: JSON.stringify([{ name: 'a', url: 'https://a.example.com', secretFile: path.join(dir, 'missing') }]) }),
  ).toMatch(/cannot read its secret/);
  expect(await refused({ ATELIER_WEBHOOK_DEPLOYERS: JSON.stringify([{ name: 'a', url: 'not a url', secretEnv: 'S' }]), S: 'x' })).toMatch(
    /^webhook deployer "a": /,
  );
});

it('reads kserve’s serving figures from Prometheus when its URL is set, and refuses a bad URL or token file with what to write', async () => {
  const kserve = { ATELIER_KSERVE_NAMESPACE: 'models', ATELIER_KSERVE_STORAGE_URI: 's3://models/{ref}' };
  expect(await names({ ...kserve, ATELIER_KSERVE_PROMETHEUS_URL: 'http://prometheus.monitoring:9090' })).toEqual(['kserve']);
  expect(
    await names({ ...kserve, ATELIER_KSERVE_PROMETHEUS_URL: 'https://prometheus.example.com', ATELIER_KSERVE_PROMETHEUS_TOKEN_FILE: path.join(dir, 'secret') }),
  ).toEqual(['kserve']);
  const refused = (env: NodeJS.ProcessEnv) =>
    deployersFromEnv({ ...kserve, ...env }).then(
      () => 'accepted',
      (e) => (e instanceof ConfigError ? e.message : `not a ConfigError: ${e}`),
    );
  expect(await refused({ ATELIER_KSERVE_PROMETHEUS_URL: 'prometheus:9090' })).toMatch(/must be an http\(s\) URL.*like http:\/\/prometheus/);
  expect(await refused({ ATELIER_KSERVE_PROMETHEUS_URL: 'not a url' })).toMatch(/is not a URL: give Prometheus' base URL/);
  expect(await refused({ ATELIER_KSERVE_PROMETHEUS_URL: 'http://p:9090', ATELIER_KSERVE_PROMETHEUS_TOKEN_FILE: path.join(dir, 'empty') })).toMatch(/is empty/);
  expect(await refused({ ATELIER_KSERVE_PROMETHEUS_URL: 'http://p:9090', ATELIER_KSERVE_PROMETHEUS_TOKEN_FILE: path.join(dir, 'missing') })).toMatch(
    /cannot read .*ENOENT.*readable file/,
  );
});
