// Splits a module's byte stream into lines (its stdout, stderr, and the progress channel on fd 3). On the progress
// channel a line may announce a frame (plugins/progress-frames.ts): that many raw bytes follow it, taken as they are
// rather than split at newlines.

/** What a line asks of the bytes after it: `bytes` of them are a frame's, handed to `frame` when `keep`, else skipped. */
export interface FrameRequest {
  bytes: number;
  keep: boolean;
}

export interface LineSplitter {
  push(chunk: Buffer): void;
  /** The stream ended: its last line, if unended, is emitted; a frame cut short is reported. */
  end(): void;
}

/**
 * Splits a byte stream into lines, cutting any line at `maxBytes` and skipping the rest of it. `onLine` may return a
 * frame request (never for a cut line): the bytes that follow go to `frames.frame` (or are skipped), then lines again.
 */
export function createLineSplitter(
  maxBytes: number,
  onLine: (line: string, cut: boolean) => FrameRequest | null | undefined,
  frames?: { frame(bytes: Buffer): void; short(got: number, wanted: number): void },
): LineSplitter {
  let parts: Buffer[] = [];
  let size = 0;
  let skipping = false;
  // A frame being taken: how many of its bytes are still to come, those kept so far, and its whole size.
  let frameLeft = 0;
  let frameSize = 0;
  let frameKeep = false;
  let frameParts: Buffer[] = [];
  const emit = (cut: boolean) => {
    const line = Buffer.concat(parts, size).toString('utf8');
    parts = [];
    size = 0;
    const request = onLine(!cut && line.endsWith('\r') ? line.slice(0, -1) : line, cut);
    if (request && frames && !cut) {
      frameLeft = frameSize = request.bytes;
      frameKeep = request.keep;
      if (frameLeft === 0) takeFrame();
    }
  };
  const takeFrame = () => {
    if (frameKeep) frames!.frame(frameParts.length === 1 ? frameParts[0]! : Buffer.concat(frameParts, frameSize));
    frameParts = [];
  };
  return {
    push(chunk: Buffer) {
      let start = 0;
      while (start < chunk.length) {
        if (frameLeft > 0) {
          const piece = chunk.subarray(start, start + frameLeft);
          if (frameKeep) frameParts.push(piece);
          frameLeft -= piece.length;
          start += piece.length;
          if (frameLeft === 0) takeFrame();
          continue;
        }
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
        start = newline + 1;
        if (!skipping) emit(false);
        skipping = false;
      }
    },
    end() {
      if (!skipping && size > 0) emit(false);
      skipping = false;
      if (frameLeft > 0) {
        frames?.short(frameSize - frameLeft, frameSize);
        frameLeft = 0;
        frameParts = [];
      }
    },
  };
}
