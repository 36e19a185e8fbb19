// The bytes of an attempt's bus messages: a bundle's JSON made from its events' once each, and whether a message fits
// the bus's limit, measured only when it could be over it. The reporter (reporter.ts) decides what goes together.
import type { ExecutorEvent } from '../protocol';

/** Room kept in a bus message for its headers (a message id, JetStream's own): what an attempt's JSON may not use. */
export const MESSAGE_HEADER_BYTES = 4096;

/**
 * Whether `json` is at most `max` bytes as UTF-8. A UTF-16 code unit takes at most 3 bytes, so a string of up to a
 * third of the limit fits without being measured (every message of a no-op attempt): measuring scanned it again.
 */
export const fits = (json: string, max: number) => json.length * 3 <= max || Buffer.byteLength(json) <= max;

/**
 * `JSON.stringify({ bundle: events })`, byte for byte, taking the last event's JSON as `lastJson` where the caller
 * already made it (the result's, whose size it checked): an array's JSON is its elements' joined by commas.
 */
export function bundleJson(events: readonly ExecutorEvent[], lastJson?: string): string {
  if (lastJson === undefined) return JSON.stringify({ bundle: events });
  if (events.length === 1) return `{"bundle":[${lastJson}]}`;
  return `{"bundle":[${JSON.stringify(events.slice(0, -1)).slice(1, -1)},${lastJson}]}`;
}

/** The characters `{"bundle":[` and `]}` add to a bundle's events (ASCII: as many bytes). */
export const BUNDLE_WRAPPER_BYTES = 13;

/**
 * `bundleJson(events, lastJson)` less its wrapper: the events' JSON as array elements, comma-joined; one event's JSON
 * for one. What the host's combiner joins (event-combiner.ts): a wrapped bundle was sliced back out of its wrapper
 * there, which copied it whole once more (S1's host: ~0.8 KB a task).
 */
export function elementsJson(events: readonly ExecutorEvent[], lastJson?: string): string {
  const last = lastJson ?? JSON.stringify(events.at(-1));
  if (events.length === 1) return last;
  return `${JSON.stringify(events.slice(0, -1)).slice(1, -1)},${last}`;
}
