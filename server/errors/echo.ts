// What an error may carry back of the caller's own input. Messages and details echo names and values the caller sent
// (an unknown parameter or field, a run id), and the CLI prints them to a terminal: so every control character but a
// newline or tab (ESC's colour and cursor sequences, CR that rewrites a line, C1 controls, bidirectional overrides)
// goes out escaped as \uXXXX, and a message is cut at a length a person reads, so a request of megabytes is not
// answered with megabytes.

/** The most characters an error's message keeps; a detail's path and message keep a quarter of it. */
export const MAX_ERROR_MESSAGE = 4_000;
/** The most details an error carries; past it, one more says how many were left out. */
export const MAX_ERROR_DETAILS = 100;

const CONTROL = '[\\u0000-\\u0008\\u000b-\\u001f\\u007f-\\u009f\\u061c\\u200e\\u200f\\u2028\\u2029\\u202a-\\u202e\\u2066-\\u2069]';
const HAS_CONTROL = new RegExp(CONTROL);
const CONTROLS = new RegExp(CONTROL, 'g');
const escaped = (c: string) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`;

/** `text` with its control characters escaped and its length cut at `max` (saying how much was cut). */
export function printable(text: string, max = MAX_ERROR_MESSAGE): string {
  const cut = text.length > max ? `${text.slice(0, max)}… (${(text.length - max).toLocaleString('en-US')} more characters)` : text;
  return HAS_CONTROL.test(cut) ? cut.replace(CONTROLS, escaped) : cut;
}

/** A name the caller sent, in double quotes, for a message: escaped as JSON escapes it, and at most `max` characters. */
export function quoted(name: string, max = 80): string {
  return JSON.stringify(name.length > max ? `${name.slice(0, max)}…` : name).replace(CONTROLS, escaped);
}

/**
 * `value` (parsed JSON) with every string in it, keys included, made printable (not cut): what a terminal client
 * receives from a server is text to show, never the terminal's commands (ESC sequences set titles, write the
 * clipboard and rewrite what was printed; CR overwrites a line; bidi overrides reorder it).
 */
export function printableData<T>(value: T): T {
  if (typeof value === 'string') return (HAS_CONTROL.test(value) ? value.replace(CONTROLS, escaped) : value) as T;
  if (Array.isArray(value)) return value.map(printableData) as T;
  if (value && typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const [key, item] of Object.entries(value))
      Object.defineProperty(out, printableData(key), { value: printableData(item), enumerable: true, writable: true, configurable: true });
    return out as T;
  }
  return value;
}
