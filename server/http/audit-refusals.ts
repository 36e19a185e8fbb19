// The GraphQL edge's audit of refusals: every FORBIDDEN error in a result (a query, a mutation, a subscription's
// set-up or events), over HTTP, SSE and graphql-ws alike, leaves an audit record before the caller hears of it. A
// refusal that carries its own record (server/auth/refuse.ts) is written as it is; one that carries none (a plain
// `forbidden(...)`, a scope-auth refusal) gets a record naming the caller, the operation and the field. Whatever
// was written already is not written again, so a new refusal site cannot forget its record nor double it.
// Unauthenticated requests are not audited: they name nobody, and recording them would let anyone fill the log.
import type { Plugin } from '@envelop/core';
import type { ExecutionArgs, ExecutionResult, GraphQLError } from 'graphql';
import { type AuditEntry, AuditedDenial, isRecorded, markRecorded, recordRefusal } from '../audit/audit';
import type { Db } from '../db/client';
import type { Identity } from '../db/tables/identities';
import { domainErrorOf } from '../errors';
import { errorChain } from '../errors/chain';

const isRefusal = (error: GraphQLError) => (domainErrorOf(error)?.code ?? error.extensions?.code) === 'FORBIDDEN';

/** Writes the audit record of every refusal in `result` not written yet; one per field path, however many list items. */
export async function recordRefusals(db: Db, args: ExecutionArgs, result: ExecutionResult): Promise<void> {
  const identity = (args.contextValue as { identity?: Identity } | undefined)?.identity ?? null;
  if (!identity || !result.errors?.length) return;
  const operation = args.document.definitions.find((d) => d.kind === 'OperationDefinition' && (!args.operationName || d.name?.value === args.operationName));
  const kind = operation?.kind === 'OperationDefinition' ? operation.operation : 'query';
  const seen = new Set<string>();
  for (const error of result.errors) {
    if (!isRefusal(error)) continue;
    const links = errorChain(error);
    if (links.some(isRecorded)) continue;
    // The innermost error is the refusal itself; one carrying its own record is written as it is.
    const own = links.find((e) => e instanceof AuditedDenial) ?? links[links.length - 1]!;
    const path = (error.path ?? []).filter((p) => typeof p === 'string').join('.');
    const fallback: AuditEntry = {
      identity,
      action: `${kind}.${error.path?.[0] ?? 'unknown'}`,
      decision: 'deny',
      subject: `graphql:${path || kind}`,
      rule: error.message,
      details: { operationName: args.operationName ?? null, path: error.path ?? [] },
    };
    if (!(own instanceof AuditedDenial)) {
      if (seen.has(fallback.subject)) continue;
      seen.add(fallback.subject);
    }
    await recordRefusal(db, own, fallback);
    for (const link of links) markRecorded(link);
  }
}

const isAsyncIterable = (value: unknown): value is AsyncIterable<unknown> => typeof value === 'object' && value !== null && Symbol.asyncIterator in value;

/** Only a result with errors costs anything: the happy path stays synchronous. */
const withErrors = (result: unknown): result is ExecutionResult => !isAsyncIterable(result) && Boolean((result as ExecutionResult | null)?.errors?.length);

export function useRefusalAudit(options: { db: Db }): Plugin {
  const { db } = options;
  return {
    onExecute: ({ args }) => ({
      onExecuteDone: ({ result }) => (withErrors(result) ? recordRefusals(db, args, result) : undefined),
    }),
    onSubscribe: ({ args, subscribeFn, setSubscribeFn }) => {
      // A subscription refused when it is set up answers a result instead of a stream.
      setSubscribeFn(async (subscribeArgs) => {
        const result = await subscribeFn(subscribeArgs);
        if (withErrors(result)) await recordRefusals(db, args, result);
        return result;
      });
      return { onSubscribeResult: () => ({ onNext: ({ result }) => (withErrors(result) ? recordRefusals(db, args, result) : undefined) }) };
    },
  };
}
