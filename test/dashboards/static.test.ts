// The control plane's static file serving for the dashboards: only dashboards/dist is served, client-side routes get
// index.html, hashed assets are cached for good, and a missing build gets a page saying how to build it.
import { mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
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

describe('serveStatic beside older builds', () => {
  let root: string;
  let server: Server;
  let base: string;
  const get = async (route: string) => {
    const res = await fetch(base + route);
    return { status: res.status, text: await res.text(), cache: res.headers.get('cache-control') };
  };

  beforeAll(async () => {
    // dist/ links to the newest of three builds in dist.builds/, as ensure-built.ts leaves them; one still being built
    root = await mkdtemp(path.join(tmpdir(), 'atelier-static-builds-'));
    const build = async (name: string, files: Record<string, string>) => {
      for (const [file, text] of Object.entries(files)) {
        await mkdir(path.dirname(path.join(root, 'dist.builds', name, file)), { recursive: true });
        await writeFile(path.join(root, 'dist.builds', name, file), text);
      }
    };
    await build('1000-1-aaaaaa', { 'index.html': 'oldest page', 'assets/page-Aaaaaaaa.js': 'oldest chunk', 'robots.txt': 'oldest' });
    await build('2000-1-bbbbbb', { 'index.html': 'older page', 'assets/page-Bbbbbbbb.js': 'older chunk', 'assets/font-Bbbbbbbb.woff2': 'font' });
    await build('3000-1-cccccc', { 'index.html': 'current page', 'assets/page-Cccccccc.js': 'current chunk' });
    await build('4000-1-dddddd.partial', { 'assets/page-Dddddddd.js': 'half a chu' });
    await writeFile(path.join(root, 'secret.js'), 'source, not build output');
    await symlink(path.join('dist.builds', '3000-1-cccccc'), path.join(root, 'dist'));
    server = createServer((req, res) => void serveStatic(req, res, root));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(async () => {
    await new Promise((resolve) => server.close(resolve));
    await rm(root, { recursive: true, force: true });
  });

  it('answers an asset the build in use lacks from an older build, cached for good', async () => {
    expect(await get('/assets/page-Cccccccc.js')).toMatchObject({ status: 200, text: 'current chunk' });
    expect(await get('/assets/page-Bbbbbbbb.js')).toEqual({ status: 200, text: 'older chunk', cache: 'public, max-age=31536000, immutable' });
    expect(await get('/assets/page-Aaaaaaaa.js')).toMatchObject({ status: 200, text: 'oldest chunk' });
    expect(await get('/assets/font-Bbbbbbbb.woff2')).toMatchObject({ status: 200, text: 'font' });
  });

  it('never answers a page, an unhashed file or a build in progress from them, nor anything outside', async () => {
    expect(await get('/')).toMatchObject({ status: 200, text: 'current page' });
    expect(await get('/robots.txt')).toMatchObject({ status: 404 });
    expect((await get('/assets/page-Dddddddd.js')).status).toBe(404);
    expect((await get('/assets/gone-Zzzzzzzz.js')).status).toBe(404);
    for (const route of ['/assets/../../secret.js', '/assets/%2e%2e/%2e%2e/secret.js', '/assets/..%2f..%2fsecret.js', '/assets/%2e%2e%2findex.html']) {
      const { text } = await get(route);
      expect(text).not.toContain('source');
      expect(text).not.toMatch(/older|oldest/);
    }
  });
});
