// A local module's pipes: stdout and stderr become log lines (cut when too long, stderr's tail kept for failure
// messages), fd 3 carries the progress protocol (plugins/progress-lines.ts): a pipe for a warm worker, a tailed file
// (progress-file.ts) for a cold-started module.
import type { ChildProcess } from 'node:child_process';
import type { Readable } from 'node:stream';
import { applyProgressFrame } from '../../plugins/progress-frames';
import { applyProgressLine, type ProgressFrame } from '../../plugins/progress-lines';
import type { TaskContext } from '../../plugins/sdk';
import { traceHop, traceNow, tracing } from '../../plugins/trace';
import type { AttemptState } from './launch';
import { createLineSplitter, type LineSplitter } from './line-splitter';

const STDERR_TAIL_LINES = 20;
const TAIL_LINE_CHARS = 1_000;
const PROGRESS_LINE_BYTES = 1 << 20; // outputs travel on fd 3 and may be larger than a log line

/** Drains the child's pipes into `state.sink`; stdout/stderr become logs, fd 3 becomes progress. */
export function followPipes(state: AttemptState, maxLogLineBytes: number) {
  if (!state.child) return;
  const [, stdout, stderr, channel] = state.child.stdio as (Readable | null)[];
  const pipeLines = (stream: Readable | null | undefined, maxBytes: number, onLine: (line: string, cut: boolean) => void) => {
    if (!stream) return;
    const splitter = createLineSplitter(maxBytes, (line, cut) => {
      onLine(line, cut);
      return null;
    });
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
  // `state.sink` is read at each line: `wait` replaces the submit context.
  const splitter = progressSplitter(() => state.sink);
  if (state.progressFile) {
    // A cold-started module's fd 3 is a file (progress-file.ts): tailed, its last line ended by finishProgress.
    state.progressFile.follow((chunk) => {
      const began = tracing() ? traceNow() : 0;
      splitter.push(chunk);
      if (began) traceHop('host: progress read', state.traceKey ?? '', began, traceNow() - began);
    });
    state.endProgress = () => splitter.end();
  } else if (channel) {
    channel.on('data', (chunk: Buffer) => splitter.push(chunk));
    channel.on('end', () => splitter.end());
    channel.on('error', () => undefined);
  }
}

/**
 * Reads fd 3's protocol lines and frames (the host sets ATELIER_PROGRESS_FRAMES: numbers as raw bytes after their
 * line); anything malformed becomes a warning on stderr, never a crash.
 */
export function progressSplitter(sink: () => TaskContext): LineSplitter {
  // A frame's line waits for its bytes; what is refused of it is reported with the line, as for any line.
  let pending: { frame: ProgressFrame; line: string } | null = null;
  const ignoring = (line: string) => (why: string) => sink().log('stderr', `[atelier] ignored progress line (${why}): ${line.slice(0, 200)}`);
  return createLineSplitter(
    PROGRESS_LINE_BYTES,
    (line, cut) => {
      if (cut) {
        sink().log('stderr', `[atelier] ignored a progress line longer than ${PROGRESS_LINE_BYTES} bytes`);
        return null;
      }
      if (line.trim() === '') return null;
      const frame = applyProgressLine(line, sink(), ignoring(line), { maxBytes: PROGRESS_LINE_BYTES });
      pending = frame && { frame, line };
      return frame && { bytes: frame.bytes, keep: frame.series !== null };
    },
    {
      frame(bytes) {
        if (pending) applyProgressFrame(pending.frame, bytes, sink(), ignoring(pending.line));
        pending = null;
      },
      short: (got, wanted) => sink().log('stderr', `[atelier] ignored a progress frame cut short (${got} of its ${wanted} bytes)`),
    },
  );
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
