// A task's logs: a virtualised list (only the rows in view exist in the DOM, so 100,000 lines scroll as
// smoothly as 100) that follows the tail while it grows, with a search box that narrows it to the matches.
import { useEffect, useLayoutEffect, useMemo, useRef, useState } from 'preact/hooks';
import { formatInteger } from '../lib/format';
import { useDebounced } from '../lib/hooks';
import type { LogBuffer } from '../lib/log-buffer';
import { afterPaint } from '../lib/perf';

const ROW_HEIGHT = 18;
const OVERSCAN = 20;

/** Indices of the lines containing `needle` (case-insensitive), extended as the buffer grows. */
class Matches {
  indices: number[] = [];
  scanned = 0;
  private lines: string[] | null = null;
  constructor(
    readonly needle: string,
    readonly buffer: LogBuffer,
  ) {}
  update() {
    const lines = this.buffer.lines;
    if (lines !== this.lines) {
      this.lines = lines; // new, or rebuilt by a history merge: scan from the start
      this.indices = [];
      this.scanned = 0;
    }
    const needle = this.needle.toLowerCase();
    for (let i = this.scanned; i < lines.length; i++) if (lines[i]!.toLowerCase().includes(needle)) this.indices.push(i);
    this.scanned = lines.length;
  }
}

export function LogView({ buffer, version, label, loading }: { buffer: LogBuffer; version: number; label: string; loading?: boolean }) {
  const [search, setSearch] = useState('');
  const needle = useDebounced(search.trim(), 150);
  const [follow, setFollow] = useState(true);
  const [scrollTop, setScrollTop] = useState(0);
  const [viewport, setViewport] = useState(420);
  const scroller = useRef<HTMLElement>(null);
  const programmatic = useRef(false);

  const matches = useMemo(() => {
    if (!needle) return null;
    performance.mark('atelier:logs:search-start');
    return new Matches(needle, buffer);
  }, [needle, buffer]);
  if (matches) matches.update(); // cheap when nothing was appended since the last render
  const count = matches ? matches.indices.length : buffer.length;
  const lineAt = (row: number) => (matches ? matches.indices[row]! : row);

  useEffect(() => {
    if (!matches) return;
    afterPaint(() => performance.measure('atelier:logs:search', 'atelier:logs:search-start'));
  }, [matches]);

  useLayoutEffect(() => {
    const el = scroller.current;
    if (!el) return;
    const observer = new ResizeObserver(() => setViewport(el.clientHeight || 420));
    observer.observe(el);
    return () => observer.disconnect();
  }, []);

  // Follow the tail: after each render with new lines, scroll to the bottom.
  useLayoutEffect(() => {
    const el = scroller.current;
    if (!el || !follow) return;
    const bottom = Math.max(0, count * ROW_HEIGHT - el.clientHeight);
    if (Math.abs(el.scrollTop - bottom) > 1) {
      programmatic.current = true;
      el.scrollTop = bottom;
      setScrollTop(el.scrollTop);
    }
  }, [count, follow, version, viewport]);

  const onScroll = () => {
    const el = scroller.current!;
    setScrollTop(el.scrollTop);
    if (programmatic.current) {
      programmatic.current = false;
      return;
    }
    const atBottom = el.scrollTop + el.clientHeight >= el.scrollHeight - ROW_HEIGHT;
    if (atBottom !== follow) setFollow(atBottom);
  };

  const first = Math.max(0, Math.floor(scrollTop / ROW_HEIGHT) - OVERSCAN);
  const last = Math.min(count, Math.ceil((scrollTop + viewport) / ROW_HEIGHT) + OVERSCAN);
  const rows = [];
  const lower = needle.toLowerCase();
  for (let row = first; row < last; row++) {
    const i = lineAt(row);
    const text = buffer.lines[i]!;
    rows.push(
      <div key={i} class={`log-line${buffer.isStderr(i) ? ' stderr' : ''}`} style={{ top: `${row * ROW_HEIGHT}px` }}>
        <span class="log-number" aria-hidden="true">
          {i + 1}
        </span>
        <LineTime at={buffer.timeAt(i)} />
        <span class="log-text">{needle ? highlight(text, lower) : text}</span>
      </div>,
    );
  }

  return (
    <div class="log-view">
      <div class="log-toolbar">
        <label class="log-search">
          <span class="visually-hidden">Search the logs of {label}</span>
          <input type="search" placeholder="Search logs…" value={search} onInput={(e) => setSearch(e.currentTarget.value)} />
        </label>
        <span class="muted" aria-live="polite" data-testid="log-count">
          {matches ? `${formatInteger(count)} of ${formatInteger(buffer.length)} lines match` : `${formatInteger(buffer.length)} lines`}
          {loading ? ' · loading history…' : ''}
        </span>
        <label class="check">
          <input type="checkbox" checked={follow} onChange={(e) => setFollow(e.currentTarget.checked)} /> Follow the end
        </label>
        <button type="button" class="button small" disabled={buffer.length === 0} onClick={() => download(buffer, label)}>
          Download
        </button>
      </div>
      {/* biome-ignore lint/a11y/noNoninteractiveTabindex: a scrolling region must take focus so keyboard users can scroll it (WCAG 2.1.1) */}
      <section class="log-scroll" ref={scroller} onScroll={onScroll} tabIndex={0} aria-label={`Logs of ${label}`}>
        {count === 0 ? (
          <p class="log-empty muted">{matches ? 'No line matches.' : loading ? 'Loading…' : 'No log lines yet. They appear here as the task writes them.'}</p>
        ) : (
          <div class="log-lines" style={{ height: `${count * ROW_HEIGHT}px` }}>
            {rows}
          </div>
        )}
      </section>
    </div>
  );
}

const lineTime = new Intl.DateTimeFormat(undefined, { hour: '2-digit', minute: '2-digit', second: '2-digit', fractionalSecondDigits: 3, hour12: false });

function LineTime({ at }: { at: number | null }) {
  if (at === null) return <span class="log-time" />;
  const iso = new Date(at).toISOString();
  return (
    <time class="log-time" dateTime={iso} title={iso}>
      {lineTime.format(at)}
    </time>
  );
}

/** Saves the whole log (every line, with its time and stream) as a text file. */
function download(buffer: LogBuffer, label: string) {
  const url = URL.createObjectURL(new Blob([buffer.text()], { type: 'text/plain;charset=utf-8' }));
  const a = document.createElement('a');
  a.href = url;
  a.download = `${label.replace(/[^\w.-]+/g, '-')}.log`;
  a.click();
  setTimeout(() => URL.revokeObjectURL(url), 1000);
}

function highlight(text: string, lowerNeedle: string) {
  const at = text.toLowerCase().indexOf(lowerNeedle);
  if (at < 0) return text;
  return (
    <>
      {text.slice(0, at)}
      <mark>{text.slice(at, at + lowerNeedle.length)}</mark>
      {text.slice(at + lowerNeedle.length)}
    </>
  );
}
