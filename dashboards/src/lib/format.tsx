// Human-readable times, durations and sizes.
import { useEffect, useState } from 'preact/hooks';

// with the time zone's name: a timestamp read by people in two places (or pasted into a chat) says which clock
const dateTime = new Intl.DateTimeFormat(undefined, {
  year: 'numeric',
  month: 'short',
  day: 'numeric',
  hour: '2-digit',
  minute: '2-digit',
  second: '2-digit',
  timeZoneName: 'short',
});
const relative = new Intl.RelativeTimeFormat(undefined, { numeric: 'auto' });
const integer = new Intl.NumberFormat();

export const formatDateTime = (iso: string | null | undefined) => (iso ? dateTime.format(new Date(iso)) : '—');
export const formatInteger = (n: number) => integer.format(n);
/** `1 run`, `2 runs`: a count and its noun, plural by adding s. */
export const count = (n: number, noun: string) => `${integer.format(n)} ${noun}${n === 1 ? '' : 's'}`;

export function formatAgo(iso: string | null | undefined, now = Date.now()): string {
  if (!iso) return '—';
  const seconds = Math.round((new Date(iso).getTime() - now) / 1000);
  const abs = Math.abs(seconds);
  if (abs < 60) return relative.format(seconds, 'second');
  if (abs < 3600) return relative.format(Math.round(seconds / 60), 'minute');
  if (abs < 86400) return relative.format(Math.round(seconds / 3600), 'hour');
  return relative.format(Math.round(seconds / 86400), 'day');
}

export function formatDuration(ms: number | null | undefined): string {
  if (ms === null || ms === undefined || !Number.isFinite(ms)) return '—';
  if (ms < 1000) return `${Math.max(0, Math.round(ms))} ms`;
  const s = ms / 1000;
  if (s < 60) return `${s.toFixed(s < 10 ? 1 : 0)} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m} min ${Math.round(s % 60)} s`;
  return `${Math.floor(m / 60)} h ${m % 60} min`;
}

/** Time saved, given in hours, in the unit that reads best: "12 s", "4.5 min", "3.2 h" (never "0.0 h" for seconds). */
export function formatSaved(hours: number): string {
  const s = Math.max(0, hours * 3600);
  if (s < 60) return `${s.toFixed(s < 10 ? 1 : 0)} s`;
  if (s < 3600) return `${(s / 60).toFixed(s < 600 ? 1 : 0)} min`;
  return `${hours.toFixed(hours < 10 ? 1 : 0)} h`;
}

/** Time between two timestamps, or from the first until now while the second is missing. */
export function span(from: string | null | undefined, to: string | null | undefined): number | null {
  if (!from) return null;
  return (to ? new Date(to).getTime() : Date.now()) - new Date(from).getTime();
}

export function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  const units = ['KiB', 'MiB', 'GiB'];
  let value = n / 1024;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return `${value.toFixed(value < 10 ? 1 : 0)} ${units[unit]}`;
}

/** A relative time ("2 minutes ago") that keeps ticking, with the absolute time and its zone as the tooltip. */
export function Time({ iso }: { iso: string | null | undefined }) {
  const ago = useTicking(() => formatAgo(iso));
  if (!iso) return <span class="muted">—</span>;
  return (
    <time dateTime={iso} title={formatDateTime(iso)}>
      {ago}
    </time>
  );
}

// One timer for every relative time on the page: each second each recomputes its text, and only the ones whose
// text changed re-render.
const tickers = new Set<() => void>();
let timer: ReturnType<typeof setInterval> | null = null;

function useTicking(compute: () => string): string {
  const [, setText] = useState('');
  const text = compute();
  useEffect(() => {
    const tick = () => setText(compute());
    tickers.add(tick);
    timer ??= setInterval(() => {
      for (const t of tickers) t();
    }, 1000);
    return () => {
      tickers.delete(tick);
      if (!tickers.size && timer) {
        clearInterval(timer);
        timer = null;
      }
    };
  });
  return text;
}
