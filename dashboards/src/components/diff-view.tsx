// Two versions side by side as one unified diff: removed lines marked "−", added "+", unchanged ones plain (each
// marked in text, not colour alone). Long runs of unchanged lines fold to a count.
import { type DiffLine, diffLines } from '../lib/diff';

const CONTEXT = 3;

export function DiffView({ before, after, label }: { before: string; after: string; label: string }) {
  const lines = diffLines(before, after);
  if (!lines) return <p class="muted">These versions are too long to compare here.</p>;
  if (lines.every((l) => l.kind === 'same')) return <p class="muted">No difference.</p>;
  return (
    <figure class="diff-figure">
      <figcaption class="visually-hidden">{label}</figcaption>
      <pre class="diff" data-testid="diff">
        {fold(lines).map((l, i) =>
          typeof l === 'number' ? (
            <span key={i} class="diff-fold">
              {`  … ${l} unchanged line${l === 1 ? '' : 's'}\n`}
            </span>
          ) : (
            <span key={i} class={`diff-${l.kind}`} data-diff={l.kind}>
              {`${l.kind === 'added' ? '+' : l.kind === 'removed' ? '−' : ' '} ${l.text}\n`}
            </span>
          ),
        )}
      </pre>
    </figure>
  );
}

/** Keeps CONTEXT unchanged lines around each change; the rest become a count. */
function fold(lines: DiffLine[]): (DiffLine | number)[] {
  const near = lines.map((_, i) => lines.slice(Math.max(0, i - CONTEXT), i + CONTEXT + 1).some((l) => l.kind !== 'same'));
  const out: (DiffLine | number)[] = [];
  for (const [i, l] of lines.entries()) {
    if (near[i]) out.push(l);
    else if (typeof out[out.length - 1] === 'number') (out[out.length - 1] as number)++;
    else out.push(1);
  }
  return out;
}
