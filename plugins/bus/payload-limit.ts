// Messages that fit the bus: a broadcast of many items is packed into as few messages as fit the server's
// max_payload (nats-server's default is 1 MiB), each a JSON array, serialized once. What one item makes of a
// message grows with what users send (a 10,000-task run's statuses, a module's log lines), so no caller may assume
// a batch fits: a 10,000-task `startRun` once failed with `max_payload size exceeded` after its transaction had
// committed. An item too large for a message on its own is replaced by what `tooLarge` makes of it (a reference
// the receiver resolves from where the item is stored), or left out when there is no such reference.

/** What nats-server allows when its configuration says nothing (and what a bus not yet connected assumes). */
export const DEFAULT_MAX_PAYLOAD_BYTES = 1024 * 1024;

/**
 * `items` as JSON arrays of at most `maxBytes` bytes each, in order. An item whose JSON alone exceeds it goes as
 * `tooLarge(item)` instead (left out if that does not fit either, or there is no `tooLarge`).
 */
export function packWithin(items: readonly unknown[], maxBytes: number, tooLarge?: (item: unknown) => unknown): string[] {
  if (!items.length) return [];
  // Most batches fit one message: serialized whole, without measuring each item (a UTF-8 byte is at most 3 per
  // UTF-16 unit, and at least 1, so the string's length often settles it without counting).
  const whole = JSON.stringify(items);
  if (whole.length * 3 <= maxBytes || (whole.length <= maxBytes && Buffer.byteLength(whole) <= maxBytes)) return [whole];
  const messages: string[] = [];
  let parts: string[] = [];
  let size = 2; // the brackets
  const flush = () => {
    if (parts.length) messages.push(`[${parts.join(',')}]`);
    parts = [];
    size = 2;
  };
  for (const item of items) {
    let json = JSON.stringify(item) ?? 'null';
    let bytes = Buffer.byteLength(json);
    if (bytes + 2 > maxBytes) {
      const reference = tooLarge?.(item);
      if (reference === undefined) continue;
      json = JSON.stringify(reference);
      bytes = Buffer.byteLength(json);
      if (bytes + 2 > maxBytes) continue;
    }
    if (size + bytes + (parts.length ? 1 : 0) > maxBytes) flush();
    size += bytes + (parts.length ? 1 : 0); // the item and, after the first, its comma
    parts.push(json);
  }
  flush();
  return messages;
}
