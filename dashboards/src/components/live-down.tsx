// What a live page says while its live updates are down: that what it shows may be behind, and how often it asks
// again meanwhile (lib/live-refresh.ts).
import type { LiveDown } from '../lib/live-refresh';

export function LiveDownBanner({ live }: { live: LiveDown }) {
  if (!live.down) return null;
  return (
    <p class="banner warn" role="status" data-live-down="true">
      Live updates are down (reconnecting): this page asks again every {Math.round(live.pollMs / 1000)} s meanwhile.
    </p>
  );
}
