// Serves the built dashboards (`dashboards/dist`, made by `npm run build:dashboards`): hashed assets cached
// for good, index.html for every client-side route, and a short page saying how to build them when missing. An asset
// the build in use lacks is looked for in the older builds kept beside it (older-builds.ts), for a tab opened on one.
import { createReadStream } from 'node:fs';
import { readFile, realpath, stat } from 'node:fs/promises';
import type { IncomingMessage, ServerResponse } from 'node:http';
import path from 'node:path';
import { type DashboardSettings, withSettings } from './dashboard-settings';
import { assetOfOlderBuild, within } from './older-builds';
import { securityHeaders } from './router';

const types: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.json': 'application/json',
  '.map': 'application/json',
  '.ico': 'image/x-icon',
  '.woff2': 'font/woff2',
  '.txt': 'text/plain; charset=utf-8',
};

// Everything the app loads comes from this origin; the API's graphql-ws socket too ('self' covers ws: in CSP 3).
const contentSecurityPolicy = [
  "default-src 'self'",
  "script-src 'self'",
  "style-src 'self' 'unsafe-inline'",
  "img-src 'self' data:",
  "connect-src 'self'",
  "frame-ancestors 'none'",
  "base-uri 'self'",
  "form-action 'self'",
].join('; ');

const notBuilt = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Atelier: dashboards not built</title>
<style>body{font-family:system-ui,sans-serif;max-width:40rem;margin:4rem auto;padding:0 1rem;color:#1f2328;line-height:1.5}code{background:#f1f3f5;padding:.1rem .3rem;border-radius:4px}</style>
</head><body><h1>The dashboards are not built</h1>
<p>Run <code>npm run build:dashboards</code> (or <code>npm start</code>, which builds them when needed) and reload this page.</p>
<p>The GraphQL API is at <a href="/graphql">/graphql</a>.</p></body></html>
`;

/** `root` is the dashboards folder; only its `dist/` build output is ever served; its HTML pages carry `settings`. */
export async function serveStatic(req: IncomingMessage, res: ServerResponse, root: string, settings?: DashboardSettings): Promise<void> {
  if (req.method !== 'GET' && req.method !== 'HEAD') {
    res.writeHead(405, { allow: 'GET, HEAD' }).end();
    return;
  }
  // dist/ is a link to one version of the build, switched in one step by a rebuild (dashboards/ensure-built.ts):
  // resolved once, so every file of this answer comes from the same version, which a switch meanwhile leaves in place
  const dist = await realpath(path.join(root, 'dist')).catch(() => path.join(root, 'dist'));
  let pathname: string;
  try {
    pathname = decodeURIComponent(new URL(req.url ?? '/', 'http://localhost').pathname);
  } catch {
    res.writeHead(400, { 'content-type': 'text/plain' }).end('Bad request path.\n');
    return;
  }
  let file = path.join(dist, path.normalize(pathname));
  if (file !== dist && !within(dist, file)) {
    res.writeHead(404, { 'content-type': 'text/plain' }).end('Not found.\n');
    return;
  }
  let info = await stat(file).catch(() => null);
  let immutable = within(path.join(dist, 'assets'), file);
  if (!info && immutable) {
    const older = await assetOfOlderBuild(root, dist, path.relative(path.join(dist, 'assets'), file));
    if (older) ({ file, info } = older);
  }
  if (!info || info.isDirectory()) {
    // A missing file with an extension is a real 404 (a stale asset), not a client-side route.
    if (!info && path.extname(pathname) && !pathname.endsWith('.html')) {
      res.writeHead(404, { 'content-type': 'text/plain', ...securityHeaders }).end('Not found.\n');
      return;
    }
    file = path.join(dist, 'index.html');
    info = await stat(file).catch(() => null);
    immutable = false;
  }
  if (!info) {
    res
      .writeHead(503, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store', ...securityHeaders })
      .end(req.method === 'HEAD' ? undefined : notBuilt);
    return;
  }
  const isHtml = file.endsWith('.html');
  // A page is small and carries the operator's settings (dashboard-settings.ts): read whole and written with them.
  const page = isHtml && settings ? Buffer.from(withSettings(await readFile(file, 'utf8'), settings)) : null;
  res.writeHead(200, {
    'content-type': types[path.extname(file)] ?? 'application/octet-stream',
    'content-length': page ? page.length : info.size,
    'cache-control': isHtml ? 'no-cache' : immutable ? 'public, max-age=31536000, immutable' : 'public, max-age=3600',
    ...securityHeaders,
    ...(isHtml ? { 'content-security-policy': contentSecurityPolicy } : {}),
  });
  if (req.method === 'HEAD') return void res.end();
  if (page) return void res.end(page);
  // a file gone since its stat (its version pruned meanwhile) ends the answer short, never the process
  createReadStream(file)
    .on('error', () => res.destroy())
    .pipe(res);
}
