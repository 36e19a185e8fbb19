// yoga's logger, less one noise: yoga logs every error its `maskError` replaced, with its stack, as an error. A domain
// error is the caller's own (a digest not uploaded yet, a run of another domain), answered with its code and what to
// do: the server did nothing wrong, so it goes to debug. Anything else (a bug, masked for the caller) stays an error.
import { createLogger, type LogLevel, type YogaLogger } from 'graphql-yoga';
import { domainErrorOf } from '../errors';

export function apiLogger(level: LogLevel | 'silent', base: YogaLogger = createLogger(level)): YogaLogger {
  return {
    ...base,
    error: (...args: unknown[]) => (args.length === 1 && domainErrorOf(args[0]) ? base.debug(...args) : base.error(...args)),
  };
}
