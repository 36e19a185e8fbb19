// What the operator set for the dashboards: the control plane serves each page with them in one
// `<meta name="atelier-settings">` (server/http/dashboard-settings.ts). Absent (vite's dev server) or unreadable, the
// defaults hold.

export interface ServerSettings {
  /** How often a live page asks again while its WebSocket is down (ATELIER_FALLBACK_POLL_MS). */
  fallbackPollMs?: number;
}

let read: ServerSettings | undefined;

/** The settings the page was served with, read once. */
export function serverSettings(): ServerSettings {
  if (read) return read;
  read = {};
  const content = document.querySelector('meta[name="atelier-settings"]')?.getAttribute('content');
  if (content) {
    try {
      const parsed = JSON.parse(content) as unknown;
      if (typeof parsed === 'object' && parsed !== null) read = parsed as ServerSettings;
    } catch {
      // a page altered on its way: the defaults
    }
  }
  return read;
}
