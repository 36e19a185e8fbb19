// The control plane's static file serving for the dashboards: only dashboards/dist is served, client-side routes get
// index.html, hashed assets are cached for good, and a missing build gets a page saying how to build it.
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { serveStatic } from '../../server/http/static';

describe('serveStatic', () => {
  let root: string;
  let server: Server;
  let base: string;
  let built = true;

  beforeAll(async () => {
    root = await mkdtemp(path.join(tmpdir(), 'atelier-static-'));
    await mkdir(path.join(root, 'dist', 'assets'), { recursive: true });
    await writeFile(path.join(root, 'dist', 'index.html'), '<!doctype html><title>app</title>');
    await writeFile(path.join(root, 'dist', 'assets', 'index-abc123.js'), 'console.log(1)');
    await writeFile(path.join(root, 'secret.txt'), 'source, not build output');
    server = createServer((req, res) => void serveStatic(req, res, built ? root : path.join(root, 'missing')));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(async () => {
    await new Promise((resolve) => server.close(resolve));
    await rm(root, { recursive: true, force: true });
  });

  it('answers client-side routes with index.html, with a content security policy', async () => {
    for (const route of ['/', '/runs/0b6c7b0e-0000-0000-0000-000000000000', '/workflows/train?task=a']) {
      const res = await fetch(base + route);
      expect(res.status).toBe(200);
      expect(await res.text()).toContain('<title>app</title>');
      expect(res.headers.get('cache-control')).toBe('no-cache');
      expect(res.headers.get('content-security-policy')).toContain("default-src 'self'");
    }
  });

  it('caches hashed assets for good and 404s a missing one instead of sending index.html', async () => {
    const asset = await fetch(`${base}/assets/index-abc123.js`);
    expect(asset.status).toBe(200);
    expect(asset.headers.get('content-type')).toContain('text/javascript');
    expect(asset.headers.get('cache-control')).toContain('immutable');
    expect((await fetch(`${base}/assets/index-gone.js`)).status).toBe(404);
  });

  it('serves nothing outside dist/', async () => {
    expect(await (await fetch(`${base}/../secret.txt`)).text()).not.toContain('source');
    expect(await (await fetch(`${base}/%2e%2e/secret.txt`)).text()).not.toContain('source');
    expect((await fetch(`${base}/%E0%A4%A`)).status).toBe(400);
    expect((await fetch(`${base}/`, { method: 'POST' })).status).toBe(405);
  });

  it('says how to build the dashboards when they are not built', async () => {
    built = false;
    try {
      const res = await fetch(`${base}/runs`);
      expect(res.status).toBe(503);
      expect(await res.text()).toContain('npm run build:dashboards');
    } finally {
      built = true;
    }
  });
});
