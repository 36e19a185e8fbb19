// The embedded database (PGlite) has one connection: a statement sent on the database itself (`db`, not the
// transaction's `tx`) while a transaction is open waits for that transaction to end. When the transaction awaits it,
// that is for ever, and the process hangs saying nothing: the outbox relay's first pass after a crash read the
// database's incarnation through `db` inside its transaction, and a restarted control plane never came up. On real
// Postgres the same code takes a second connection and works, so only the embedded default ever showed it. This guard
// turns the mistake into an error at once, on the embedded database, wherever it is made: a statement on the client
// from inside an open transaction's work is refused, naming the fix.
import { AsyncLocalStorage } from 'node:async_hooks';
import type { PGlite, Transaction } from '@electric-sql/pglite';

export class NestedStatementError extends Error {
  readonly code = 'NESTED_STATEMENT';
  constructor() {
    super(
      'A statement was sent on the embedded database while a transaction of the same work was open: it would wait for that transaction for ever (one connection). Send it on the transaction (`tx`), or before or after the transaction.',
    );
    this.name = 'NestedStatementError';
  }
}

/** Wraps `client`'s query, exec and transaction in place (a transaction begun inside another waits as well); returns it. */
export function guardNestedStatements(client: PGlite): PGlite {
  const work = new AsyncLocalStorage<{ open: boolean }>();
  const transaction = client.transaction.bind(client);
  client.transaction = <T>(fn: (tx: Transaction) => Promise<T>): Promise<T> => {
    if (work.getStore()?.open) return Promise.reject(new NestedStatementError());
    const state = { open: true };
    return work.run(state, () =>
      transaction(async (tx) => {
        try {
          return await fn(tx);
        } finally {
          // What the work started and runs later (a timer, a publish after the commit) may use the client again.
          state.open = false;
        }
      }),
    );
  };
  const query = client.query.bind(client);
  client.query = ((...args: Parameters<PGlite['query']>) =>
    work.getStore()?.open ? Promise.reject(new NestedStatementError()) : query(...args)) as PGlite['query'];
  const exec = client.exec.bind(client);
  client.exec = (...args: Parameters<PGlite['exec']>) => (work.getStore()?.open ? Promise.reject(new NestedStatementError()) : exec(...args));
  return client;
}
