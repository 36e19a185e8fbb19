// A connection lost or refused: Postgres or nats-server restarting, a socket reset. A leaf, as server/errors is: the
// edges answer such an error as UNAVAILABLE (retry shortly), and a long-running process survives one
// (server/lifecycle/transient-errors.ts).
import { errorChain, wrapsCode } from './chain';

/** Codes of a lost or refused connection: the Postgres driver's, Postgres's own (class 08, admin shutdown), the OS's. */
const LOST = new Set([
  'CONNECTION_CLOSED',
  'CONNECTION_ENDED',
  'CONNECTION_DESTROYED',
  'CONNECT_TIMEOUT',
  'ECONNREFUSED',
  'ECONNRESET',
  'EPIPE',
  'ETIMEDOUT',
  '57P01',
  '57P02',
  '57P03',
  '08000',
  '08001',
  '08003',
  '08006',
  // Refused at connect: every connection slot taken ("sorry, too many clients already", or the rest reserved).
  '53300',
]);

/**
 * A database closed to new connections (`alter database … with allow_connections false`, or being dropped or
 * restored): SQLSTATE 55000, a code Postgres gives many other refusals too, so told apart by its message.
 */
const closedDatabase = (error: unknown) =>
  errorChain(error).some(
    (e) => (e as { code?: unknown }).code === '55000' && /is not currently accepting connections/.test(String((e as { message?: unknown }).message)),
  );

/** Whether `error` (or what it wraps) is a lost or refused connection. */
export const isLostConnection = (error: unknown): boolean => wrapsCode(error, LOST) || closedDatabase(error);
