// Everything no other route answers: the built dashboards (static files, index.html for client-side routes).
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Route } from '../router';
import { serveStatic } from '../static';

/** The repository's `dashboards/` folder; `serveStatic` serves only its `dist/`. */
export const defaultDashboardsDir = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..', 'dashboards');

export function useDashboards(options: { root?: string } = {}): Route {
  const root = options.root ?? defaultDashboardsDir;
  return { name: 'dashboards', matches: () => true, handle: (req, res) => serveStatic(req, res, root) };
}
