// Messages that fit the bus: a broadcast of many items is packed into as few messages as fit the server's
// max_payload (nats-server's default is 1 MiB), each a JSON array, serialized once. What one item makes of a
// message grows with what users send (a 10,000-task run's statuses, a module's log lines), so no caller may assume
// a batch fits: a 10,000-task `startRun` once failed with `max_payload size exceeded` after its transaction had
// committed. An item too large for a message on its own is replaced by what `tooLarge` makes of it (a reference
// the receiver resolves from where the item is stored), or left out when there is no such reference.

/** What nats-server allows when its configuration says nothing (and what a bus not yet connected assumes). */
export const DEFAULT_MAX_PAYLOAD_BYTES = 1024 * 1024;

/** How many items a large batch's size is guessed from. */
const SAMPLE_ITEMS = 16;

/** The share of the limit a split aims each part at, so that a part a little larger than its guess still fits. */
const PART_FILL = 0.875;

/**
 * `items` as JSON arrays of at most `maxBytes` bytes each, in order: the whole batch when it fits (most do), else
 * consecutive runs of items, each serialized once as its own array, as few as their size says. An item whose JSON alone
 * exceeds the limit goes as `[tooLarge(item)]` instead (left out if that does not fit either, or there is no `tooLarge`).
 */
export function packWithin(items: readonly unknown[], maxBytes: number, tooLarge?: (item: unknown) => unknown): string[] {
  const pieces: string[] = [];
  if (items.length) packRange(items, 0, items.length, maxBytes, tooLarge, pieces);
  return pieces.length < 2 ? pieces : merged(pieces, maxBytes);
}

/**
 * Consecutive pieces joined into one message where they fit together: a split by a guess too large (a batch whose first
 * items are far larger than the rest) leaves parts far under the limit. Parts split as planned are mostly over half the
 * limit each, so they go as they are, not copied. (Counting a piece's bytes flattens it: the publish's encoding would.)
 */
function merged(pieces: string[], maxBytes: number): string[] {
  const out: string[] = [];
  let group: string[] = [];
  let size = 0;
  const close = () => {
    if (group.length === 1) out.push(group[0]!);
    else if (group.length)
      out.push(
        joinFlat(
          '[',
          group.map((piece) => piece.slice(1, -1)),
          ',',
          ']',
        ),
      );
    group = [];
  };
  for (const piece of pieces) {
    const bytes = Buffer.byteLength(piece);
    // `[a]` and `[b]` make `[a,b]`: one byte less than the two.
    if (group.length && size + bytes - 1 > maxBytes) close();
    size = group.length ? size + bytes - 1 : bytes;
    group.push(piece);
  }
  close();
  return out;
}

function packRange(items: readonly unknown[], from: number, to: number, maxBytes: number, tooLarge: ((item: unknown) => unknown) | undefined, out: string[]) {
  const count = to - from;
  // A batch several times the limit (a 10,000-task run's statuses, ~2 MB) is split by the size of its first items,
  // without serializing it whole first: each item is then serialized once, in its part, not two or three times.
  let length = count > SAMPLE_ITEMS * 4 ? Math.ceil((JSON.stringify(items.slice(from, from + SAMPLE_ITEMS)).length * count) / SAMPLE_ITEMS) : 0;
  if (length <= maxBytes * 1.25) {
    const json = JSON.stringify(from === 0 && to === items.length ? items : items.slice(from, to));
    if (fits(json, maxBytes)) {
      out.push(json);
      return;
    }
    length = json.length;
  }
  if (count === 1) {
    const reference = tooLarge?.(items[from]);
    if (reference === undefined) return;
    const json = JSON.stringify([reference]);
    if (fits(json, maxBytes)) out.push(json);
    return;
  }
  // As many parts as its size says (at least two, so that a range ends as single items at worst); a part that still
  // does not fit is split again.
  const parts = Math.min(count, Math.max(2, Math.ceil(length / (maxBytes * PART_FILL))));
  for (let i = 0; i < parts; i++)
    packRange(items, from + Math.floor((i * count) / parts), from + Math.floor(((i + 1) * count) / parts), maxBytes, tooLarge, out);
}

/**
 * Whether `json` is at most `maxBytes` in UTF-8: a UTF-8 byte is at most 3 per UTF-16 unit and at least 1, so its length
 * often settles it without counting (counting flattens a string JSON.stringify built in parts: a copy, which the
 * publish's encoding makes anyway).
 */
const fits = (json: string, maxBytes: number) => json.length * 3 <= maxBytes || (json.length <= maxBytes && Buffer.byteLength(json) <= maxBytes);

/**
 * `open + parts.join(separator) + close` as one flat string, its text copied once. A template literal around a join
 * makes a string of two parts (a V8 cons string), which whoever writes it out (the postgres driver's
 * `Buffer.byteLength`, NATS' `TextEncoder`) copies again to flatten: a task batch's or an outbox statement's JSON,
 * ~0.4 KB a task each.
 */
export function joinFlat(open: string, parts: readonly string[], separator: string, close: string): string {
  if (parts.length <= 1) return [open, parts[0] ?? '', close].join('');
  const all = parts.slice();
  all[0] = open + all[0]!;
  all[all.length - 1] = all[all.length - 1]! + close;
  return all.join(separator);
}
