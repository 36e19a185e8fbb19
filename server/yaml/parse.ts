// YAML off the event loop. The YAML parser costs ~7 ms a KiB on these machines, so a 64 KiB manifest or a 128 KiB
// workflow spec would hold every other request (and /health) for half a second or more. Texts above a few KiB are
// parsed on one worker thread, in turn; small ones (the usual spec or manifest) inline, where a thread hop would
// cost more than the parse. A parse that runs past its deadline ends the thread (a fresh one takes the next text)
// and fails with a YamlParseError the caller turns into its own typed error.
import { Worker } from 'node:worker_threads';
import { parse } from 'yaml';

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

interface Pending {
  resolve: (value: unknown) => void;
  reject: (error: Error) => void;
  timer: NodeJS.Timeout;
}

type Answer = { id: number; value?: unknown; error?: { name: string; message: string; code?: string } };

/** One parser thread and the texts it owes answers for. */
class ParserThread {
  readonly pending = new Map<number, Pending>();
  private readonly worker = new Worker(new URL('./worker.mjs', import.meta.url));
  private nextId = 0;

  constructor(private readonly onGone: (thread: ParserThread) => void) {
    this.worker.unref(); // a parser thread never keeps the process alive
    this.worker.on('message', ({ id, value, error }: Answer) => {
      const p = this.settle(id);
      if (!p) return;
      if (error) p.reject(new YamlParseError(error.message, error.name, error.code));
      else p.resolve(value);
    });
    this.worker.on('error', (error) => this.end(error));
    this.worker.on('exit', (code) => this.end(new Error(`exit code ${code}`)));
  }

  parse(text: string, deadlineMs: number): Promise<unknown> {
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        // This text holds the thread and every text after it: end the thread, the next call starts another.
        this.settle(id)?.reject(new YamlParseError(`parsing took longer than ${deadlineMs / 1000} s`, 'Error', 'DEADLINE'));
        this.end(new Error('a parse ran past its deadline'));
      }, deadlineMs);
      timer.unref();
      this.pending.set(id, { resolve, reject, timer });
      this.worker.postMessage({ id, text });
    });
  }

  private settle(id: number): Pending | undefined {
    const p = this.pending.get(id);
    if (!p) return undefined;
    this.pending.delete(id);
    clearTimeout(p.timer);
    return p;
  }

  private end(error: Error) {
    this.onGone(this);
    for (const id of [...this.pending.keys()]) this.settle(id)?.reject(new YamlParseError(`the YAML parser stopped: ${error.message}`, 'Error'));
    void this.worker.terminate();
  }
}

let current: ParserThread | null = null;
const thread = () => {
  current ??= new ParserThread((gone) => {
    if (current === gone) current = null;
  });
  return current;
};

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
  return thread().parse(text, deadlineMs);
}
