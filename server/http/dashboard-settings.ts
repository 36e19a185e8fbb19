// What the operator sets for the dashboards, handed to them with their page: index.html is served with one
// `<meta name="atelier-settings">` whose content is the settings as JSON, read once by the page
// (dashboards/src/lib/server-settings.ts). A meta tag, not an inline script, so the page's CSP stays `script-src 'self'`,
// and no request of its own: the page has its settings before it renders anything.

/** The settings every dashboard page is served with. */
export interface DashboardSettings {
  /** How often a live page asks again while its WebSocket is down (`ATELIER_FALLBACK_POLL_MS`); a browser's local-storage key overrides it. */
  fallbackPollMs: number;
}

const escapeAttribute = (text: string) => text.replace(/&/g, '&amp;').replace(/"/g, '&quot;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

/** index.html with the settings' meta tag before `</head>` (unchanged if it has none: a page built by something else). */
export function withSettings(html: string, settings: DashboardSettings): string {
  const at = html.indexOf('</head>');
  if (at < 0) return html;
  const tag = `<meta name="atelier-settings" content="${escapeAttribute(JSON.stringify(settings))}" />`;
  return `${html.slice(0, at)}${tag}\n${html.slice(at)}`;
}
