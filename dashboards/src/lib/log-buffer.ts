// A task's log lines, appended in batches as they stream in. Lines live in one flat array (with a byte per
// line for its stream) so 100,000 lines cost a few MB and reading line i is O(1) for the virtualised view.

export type Stream = 'stdout' | 'stderr';

export class LogBuffer {
  lines: string[] = [];
  private streams = new Uint8Array(1024);
  /** Server timestamp (ms) and first line index of each batch, to merge fetched history with the live tail. */
  private batches: { at: number; start: number }[] = [];
  /** Bumped on every change; views compare it to know when to re-render. */
  version = 0;

  get length() {
    return this.lines.length;
  }

  isStderr(i: number) {
    return this.streams[i] === 1;
  }

  /** When line i was written (ms; its batch's server time), found by a binary search over the batches. */
  timeAt(i: number): number | null {
    let lo = 0;
    let hi = this.batches.length - 1;
    let found = -1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      if (this.batches[mid]!.start <= i) {
        found = mid;
        lo = mid + 1;
      } else hi = mid - 1;
    }
    return found < 0 ? null : this.batches[found]!.at;
  }

  /** The whole log as text, one `time stream line` per line, for a download. */
  text(): string {
    const out: string[] = [];
    for (let i = 0; i < this.lines.length; i++) {
      const at = this.timeAt(i);
      out.push(`${at === null ? '-' : new Date(at).toISOString()} ${this.isStderr(i) ? 'stderr' : 'stdout'} ${this.lines[i]}`);
    }
    return `${out.join('\n')}\n`;
  }

  append(stream: Stream | string, lines: readonly string[], at: number) {
    if (!lines.length) return;
    const start = this.lines.length;
    this.batches.push({ at, start });
    this.ensure(start + lines.length);
    const flag = stream === 'stderr' ? 1 : 0;
    for (let i = 0; i < lines.length; i++) {
      this.lines.push(lines[i]!);
      this.streams[start + i] = flag;
    }
    this.version++;
  }

  /**
   * Merges the history the API returned (the latest lines, oldest first) with what streamed in live: when the live
   * tail starts no later than the history, it already holds everything; otherwise the history goes first and only
   * live batches newer than it stay.
   */
  mergeHistory(history: readonly { stream: string; line: string; at: string }[]) {
    if (!history.length) return;
    const firstAt = Date.parse(history[0]!.at);
    const lastAt = Date.parse(history[history.length - 1]!.at);
    if (this.batches.length && this.batches[0]!.at <= firstAt) return;
    const keepFrom = this.batches.find((b) => b.at > lastAt)?.start ?? this.lines.length;
    const liveLines = this.lines.slice(keepFrom);
    const liveStreams = this.streams.slice(keepFrom, this.lines.length);
    const liveBatches = this.batches.filter((b) => b.start >= keepFrom).map((b) => ({ at: b.at, start: b.start - keepFrom + history.length }));
    this.lines = history.map((h) => h.line);
    this.streams = new Uint8Array(Math.max(1024, (history.length + liveLines.length) * 2));
    for (const [i, h] of history.entries()) this.streams[i] = h.stream === 'stderr' ? 1 : 0;
    this.streams.set(liveStreams, history.length);
    this.lines.push(...liveLines);
    // one batch per run of history lines written at the same time, so each line keeps its own time
    const historyBatches: { at: number; start: number }[] = [];
    for (const [i, h] of history.entries()) {
      const at = Date.parse(h.at);
      if (historyBatches[historyBatches.length - 1]?.at !== at) historyBatches.push({ at, start: i });
    }
    this.batches = [...historyBatches, ...liveBatches];
    this.version++;
  }

  private ensure(size: number) {
    if (size <= this.streams.length) return;
    let capacity = this.streams.length;
    while (capacity < size) capacity *= 2;
    const next = new Uint8Array(capacity);
    next.set(this.streams);
    this.streams = next;
  }
}
