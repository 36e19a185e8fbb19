// The JSON of the feed's events, made once: the append serializes each event for its run_events row
// (run-event-log.ts), and the publish sends that same string with the event's number spliced in (feed.ts), rather than
// the bus serializing every event again (plugins/bus/payload-limit.ts takes the strings as they are).
import type { FeedEvent } from './feed';

/** A numbered event's body as JSON.stringify made it (the event less its `seq`, in the same key order). */
const bodies = new WeakMap<FeedEvent, string>();

/**
 * Remembers `json`, `JSON.stringify` of the body `event` was numbered from, for its publish. The body must have had no
 * `seq` of its own: the number then comes last in the event's keys (Object.assign of the body, then `seq` set), as
 * publishedJson puts it.
 */
export function rememberBodyJson(event: FeedEvent, json: string): void {
  bodies.set(event, json);
}

/** `JSON.stringify(event)`, byte for byte, made from its body's JSON where the append remembered it; else undefined. */
export function publishedJson(event: FeedEvent): string | undefined {
  const body = bodies.get(event);
  if (body === undefined) return undefined;
  return body === '{}' ? `{"seq":${event.seq}}` : `${body.slice(0, -1)},"seq":${event.seq}}`;
}
