// A local module's pipes: stdout and stderr become log lines (cut when too long, stderr's tail kept for failure
// messages), fd 3 carries the progress protocol (plugins/progress-lines.ts): a pipe for a warm worker, a tailed file
// (progress-file.ts) for a cold-started module.
import type { ChildProcess } from 'node:child_process';
import type { Readable } from 'node:stream';
import { applyProgressLine } from '../../plugins/progress-lines';
import type { TaskContext } from '../../plugins/sdk';
import { traceHop, traceNow, tracing } from '../../plugins/trace';
import type { AttemptState } from './launch';

const STDERR_TAIL_LINES = 20;
const TAIL_LINE_CHARS = 1_000;
const PROGRESS_LINE_BYTES = 1 << 20; // outputs travel on fd 3 and may be larger than a log line

/** Drains the child's pipes into `state.sink`; stdout/stderr become logs, fd 3 becomes progress. */
export function followPipes(state: AttemptState, maxLogLineBytes: number) {
  if (!state.child) return;
  const [, stdout, stderr, channel] = state.child.stdio as (Readable | null)[];
  const pipeLines = (stream: Readable | null | undefined, maxBytes: number, onLine: (line: string, cut: boolean) => void) => {
    if (!stream) return;
    const splitter = createLineSplitter(maxBytes, onLine);
    stream.on('data', (chunk: Buffer) => splitter.push(chunk));
    stream.on('end', () => splitter.end());
    stream.on('error', () => undefined);
  };
  pipeLines(stdout, maxLogLineBytes, (line, cut) => state.sink.log('stdout', cut ? `${line} …[line cut at ${maxLogLineBytes} bytes]` : line));
  pipeLines(stderr, maxLogLineBytes, (line, cut) => {
    state.sink.log('stderr', cut ? `${line} …[line cut at ${maxLogLineBytes} bytes]` : line);
    state.stderrTail.push(line.length > TAIL_LINE_CHARS ? `${line.slice(0, TAIL_LINE_CHARS)}…` : line);
    if (state.stderrTail.length > STDERR_TAIL_LINES) state.stderrTail.shift();
  });
  const onProgressLine = (line: string, cut: boolean) => {
    if (cut) state.sink.log('stderr', `[atelier] ignored a progress line longer than ${PROGRESS_LINE_BYTES} bytes`);
    else handleProgressLine(line, state.sink);
  };
  if (state.progressFile) {
    // A cold-started module's fd 3 is a file (progress-file.ts): tailed, its last line ended by finishProgress.
    const splitter = createLineSplitter(PROGRESS_LINE_BYTES, onProgressLine);
    state.progressFile.follow((chunk) => {
      const began = tracing() ? traceNow() : 0;
      splitter.push(chunk);
      if (began) traceHop('host: progress read', state.traceKey ?? '', began, traceNow() - began);
    });
    state.endProgress = () => splitter.end();
  } else pipeLines(channel, PROGRESS_LINE_BYTES, onProgressLine);
}

/** Reads fd-3 protocol lines; anything malformed becomes a warning on stderr, never a crash. */
function handleProgressLine(line: string, ctx: TaskContext) {
  if (line.trim() === '') return;
  applyProgressLine(line, ctx, (why) => ctx.log('stderr', `[atelier] ignored progress line (${why}): ${line.slice(0, 200)}`));
}

/** Splits a byte stream into lines, cutting any line at `maxBytes` and skipping the rest of it. */
function createLineSplitter(maxBytes: number, onLine: (line: string, cut: boolean) => void) {
  let parts: Buffer[] = [];
  let size = 0;
  let skipping = false;
  const emit = (cut: boolean) => {
    const line = Buffer.concat(parts, size).toString('utf8');
    parts = [];
    size = 0;
    onLine(!cut && line.endsWith('\r') ? line.slice(0, -1) : line, cut);
  };
  return {
    push(chunk: Buffer) {
      let start = 0;
      while (start < chunk.length) {
        const newline = chunk.indexOf(10, start);
        const end = newline === -1 ? chunk.length : newline;
        if (!skipping) {
          const piece = chunk.subarray(start, end);
          if (size + piece.length > maxBytes) {
            parts.push(piece.subarray(0, maxBytes - size));
            size = maxBytes;
            emit(true);
            skipping = true;
          } else {
            parts.push(piece);
            size += piece.length;
          }
        }
        if (newline === -1) return;
        if (!skipping) emit(false);
        skipping = false;
        start = newline + 1;
      }
    },
    end() {
      if (!skipping && size > 0) emit(false);
      skipping = false;
    },
  };
}

/** Reads the rest of a progress file once the module has exited (and its pipes drained): nothing it wrote is lost. */
export async function finishProgress(state: AttemptState) {
  await state.progressFile?.finish();
  state.endProgress?.();
  state.endProgress = undefined;
}

/** Resolves when the child's pipes have closed, or after `ms` (a grandchild may keep them open). */
export async function drained(child: ChildProcess, ms: number) {
  const streams = child.stdio.filter((s): s is Readable => !!s && 'on' in s);
  const closed = Promise.all(streams.map((s) => (s.destroyed || s.readableEnded ? undefined : new Promise((resolve) => s.once('close', resolve)))));
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([closed, new Promise((resolve) => (timer = setTimeout(resolve, ms)))]);
  clearTimeout(timer);
}
