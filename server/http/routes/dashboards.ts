// Everything no other route answers: the built dashboards (static files, index.html for client-side routes).
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { DashboardSettings } from '../dashboard-settings';
import type { Route } from '../router';
import { serveStatic } from '../static';

/** The repository's `dashboards/` folder; `serveStatic` serves only its `dist/`. */
export const defaultDashboardsDir = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..', 'dashboards');

/** `settings`: what the operator set for the pages, served with each (dashboard-settings.ts). */
export function useDashboards(options: { root?: string; settings?: DashboardSettings } = {}): Route {
  const root = options.root ?? defaultDashboardsDir;
  return { name: 'dashboards', matches: () => true, handle: (req, res) => serveStatic(req, res, root, options.settings) };
}
