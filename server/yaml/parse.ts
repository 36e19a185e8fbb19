// YAML off the event loop. The YAML parser costs ~7 ms a KiB on these machines, so a 64 KiB manifest or a 128 KiB
// workflow spec would hold every other request (and /health) for half a second or more. Texts above a few KiB are
// parsed on one worker thread, in turn; small ones (the usual spec or manifest) inline, where a thread hop would
// cost more than the parse. A parse that runs past its deadline ends the thread (a fresh one takes the next text)
// and fails with a YamlParseError the caller turns into its own typed error.
import { parse } from 'yaml';
import { DeadlineThread, type ThreadCallError } from '../threads/deadline-thread';

/** Texts up to this many characters are parsed inline: at most ~15 ms of the event loop. */
export const INLINE_YAML_CHARS = 2 * 1024;
/** How long one parse may take on the worker before it is given up. */
export const YAML_PARSE_DEADLINE_MS = 30_000;

/** The parser's own error, carried over from the worker: `name` is RangeError for a stack exhausted by nesting. */
export class YamlParseError extends Error {
  constructor(
    message: string,
    readonly parserName: string,
    readonly code?: string,
  ) {
    super(message);
    this.name = 'YamlParseError';
  }
  /** The parser hit a resource limit (nesting deeper than its stack, alias expansion) rather than a syntax error. */
  get exhausted(): boolean {
    return this.parserName === 'RangeError' || this.code === 'RESOURCE_EXHAUSTION';
  }
  get timedOut(): boolean {
    return this.code === 'DEADLINE';
  }
}

const parser = new DeadlineThread(new URL('./worker.mjs', import.meta.url), 'parsing');

/** Parses YAML (or JSON) text; rejects with a YamlParseError. */
export function parseYaml(text: string, deadlineMs = YAML_PARSE_DEADLINE_MS): Promise<unknown> {
  if (text.length <= INLINE_YAML_CHARS) {
    try {
      return Promise.resolve(parse(text));
    } catch (error) {
      const e = error as { name?: string; message?: string; code?: string };
      return Promise.reject(new YamlParseError(String(e.message ?? error), e.name ?? 'Error', e.code));
    }
  }
  return parser.call({ text }, deadlineMs).catch((error: ThreadCallError) => {
    throw new YamlParseError(error.message, error.errorName, error.code);
  });
}
