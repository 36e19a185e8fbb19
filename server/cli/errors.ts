// The CLI's errors and the one way they are printed: `error [CODE]: message` with the server's details for API
// errors, `error: message` for mistakes made locally or an unreachable server.
import { printable } from '../errors/echo';
import { readCliConfig } from './config';

export interface ErrorDetail {
  path?: string;
  message: string;
}

/** A failure talking to Atelier: GraphQL errors (with their code), an HTTP status, or an unreachable server. */
export class ApiError extends Error {
  constructor(
    message: string,
    readonly code: string,
    readonly details: ErrorDetail[] = [],
    readonly hint?: string,
  ) {
    super(message);
  }
}

/**
 * A message that ends by listing its own details (`The workflow cannot run: path: problem; path: problem`, as
 * errors are written for clients that print the message alone) loses that list here: each detail gets its own line.
 */
export function leadOf(message: string, details: ErrorDetail[]): string {
  if (!details.length) return message;
  for (const joiner of [': ', ' ']) {
    const listed = `: ${details.map((d) => (d.path ? `${d.path}${joiner}${d.message}` : d.message)).join('; ')}`;
    if (message.endsWith(listed) && message.length > listed.length) return `${message.slice(0, -listed.length)}:`;
  }
  return message;
}

const words = (text: string) => text.toLowerCase().match(/[\p{L}\p{N}]+/gu) ?? [];

/**
 * Whether the lead already says a detail: its message, and where it is (the path's words), as servers write errors for
 * clients that print the message alone (`filter column 14: expected …` beside `{ path: "filter:14", message: "expected …" }`,
 * a message repeated whole as its one detail). Such a detail printed under it would say the same thing twice.
 */
export function alreadySaid(lead: string, detail: ErrorDetail): boolean {
  const what = detail.message.trim().replace(/\.$/, '').toLowerCase();
  const text = lead.toLowerCase();
  if (!what || !text.includes(what)) return false;
  const said = new Set(words(lead));
  return text.trim().replace(/\.$/, '') === what || words(detail.path ?? '').every((w) => said.has(w));
}

/** A mistake on the command line or in local files. */
export class CliError extends Error {}

/** Prints an error to stderr and returns the exit status for it. */
export function reportError(error: unknown): number {
  // What a server says is its text, not the terminal's commands: printed with control characters escaped.
  const say = (line: string) => process.stderr.write(`${printable(line, Number.POSITIVE_INFINITY)}\n`);
  const code = (error as { code?: unknown }).code;
  const details = (error as { details?: ErrorDetail[] }).details;
  if (error instanceof ApiError && (error.code === 'UNREACHABLE' || error.code === 'DISCONNECTED')) {
    say(`error: ${error.message}`);
    if (error.hint) say(`  hint: ${error.hint}`);
  } else if (error instanceof ApiError || (error instanceof Error && typeof code === 'string' && /^[A-Z_]+$/.test(code))) {
    // ApiError from the server, or an AtelierError from a check run locally (the manifest before a push).
    // an ApiError's message was shortened when it was made (client.ts), before details were added to
    const message = error instanceof ApiError ? error.message : leadOf((error as Error).message, details ?? []);
    say(`error [${code}]: ${message}`);
    for (const d of details ?? []) if (!alreadySaid(message, d)) say(`  ${d.path ? `${d.path}: ` : ''}${d.message}`);
    if (error instanceof ApiError && error.hint) say(`  hint: ${error.hint}`);
  } else if (error instanceof CliError) {
    say(`error: ${error.message}`);
  } else {
    say(`error: ${error instanceof Error ? (readCliConfig().debug ? error.stack : error.message) : String(error)}`);
  }
  return 1;
}

/**
 * Adds what the user passed to an API error about a run parameter: the server names the parameter but never
 * echoes its value (the value may be data, and such messages can reach public places); the CLI knows it.
 */
export function withPassedParams(params: Record<string, unknown> | undefined) {
  return (error: unknown): never => {
    if (error instanceof ApiError && params) {
      for (const d of error.details) {
        const name = /^parameters\.([^.]+)$/.exec(d.path ?? '')?.[1];
        if (name !== undefined && Object.hasOwn(params, name)) d.message += ` (you passed --param ${name}=${JSON.stringify(params[name])})`;
      }
    }
    throw error;
  };
}
