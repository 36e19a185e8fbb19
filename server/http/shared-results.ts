// Live events executed once for all the subscribers who share them. A run's event reaches every subscriber of the
// run on this replica as one object (server/events/feed.ts); without this, each subscriber ran the whole GraphQL
// execution over it and serialized its own copy (1,000 subscribers: 1,000 executions of one event). Here the
// result of executing one event object for one sharing key is computed once, and its JSON once, and every
// subscriber with that key gets that same result object and those same bytes (graphql-ws through
// `sharedJsonOf`, SSE through the result's `stringify`, which yoga's SSE writer uses).
//
// What decides the events a subscriber gets is untouched: each subscriber keeps its own source stream (its
// snapshot, its resume point, its access checks, its back-pressure); only the execution of an event object that
// stream yields is shared. The sharing key is the document, operation and variables, and the access decision:
// the identity with its role, its teams' grants and the token's scopes, everything its ability is built from (so
// two subscribers share only when every decision their abilities could make is the same). Only the fields listed in
// `shareable` are shared: fields whose result depends on the event object, the document and what the key holds of the
// caller (a resolver that asks the caller's ability or identity, as a deployment's `viewerCan` does, answers alike for
// one key). Sharing needs one event object for all: the run feed, the deployment watcher and the executors' change
// batches hand every subscriber the same object; an object made per subscriber is executed per subscriber, as before.

import { execute } from '@graphql-tools/executor';
import { createGraphQLError } from '@graphql-tools/utils';
import {
  createSourceEventStream,
  type DocumentNode,
  type ExecutionArgs,
  type ExecutionResult,
  getOperationAST,
  type OperationDefinitionNode,
  print,
} from 'graphql';
import type { Plugin } from 'graphql-yoga';
import type { Context } from '../../schema/context';
import { noteSeq } from '../../schema/live-access';
import { abilityKey } from '../auth/ability';

/** A result shared by subscribers: yoga's SSE writer calls `stringify`; graphql-ws uses `sharedJsonOf`. */
interface SharedResult extends ExecutionResult {
  stringify?: (result: ExecutionResult) => string;
}

const jsonOf = new WeakMap<object, string>();
const sharedResults = new WeakSet<object>();

/** The JSON of a shared result, serialized once for all its subscribers; undefined for a result that is not shared. */
export function sharedJsonOf(result: unknown): string | undefined {
  if (typeof result !== 'object' || result === null) return undefined;
  if (!sharedResults.has(result)) return undefined;
  let json = jsonOf.get(result);
  if (json === undefined) {
    json = JSON.stringify(result);
    jsonOf.set(result, json);
  }
  return json;
}
function share(result: ExecutionResult): SharedResult {
  sharedResults.add(result);
  // Not enumerable: it must not be serialized itself.
  Object.defineProperty(result, 'stringify', { value: () => sharedJsonOf(result)!, enumerable: false });
  return result;
}

const printed = new WeakMap<DocumentNode, string>();
/** Parsed documents are cached by their text (yoga's parser cache), so the same query is usually the same node. */
const textOf = (document: DocumentNode) => {
  let text = printed.get(document);
  if (text === undefined) printed.set(document, (text = print(document)));
  return text;
};

/**
 * The access part of the key: the identity (and its role), its teams' grants and the token's scopes, which the
 * ability is built from and nothing else (`abilityKey`): two equal keys decide everything alike.
 */
const accessKey = (ctx: Context): string => abilityKey(ctx.identity, ctx.grants, ctx.scopes);

function rootField(operation: OperationDefinitionNode): string | null {
  const selections = operation.selectionSet.selections;
  if (selections.length !== 1 || selections[0]!.kind !== 'Field' || selections[0]!.directives?.length) return null;
  return selections[0]!.name.value;
}

/**
 * How many events were executed and how many results were handed out, and how many of those went out past envelop's
 * per-result hooks (`withoutHooksForShared`) (tests and operators: the sharing at work).
 */
export const sharingStats = { executions: 0, deliveries: 0, unhooked: 0 };

/** Per event object, per sharing key: the one execution of it (a promise, so subscribers arriving meanwhile wait on it). */
const executions = new WeakMap<object, Map<string, Promise<SharedResult>>>();

function executeShared(args: ExecutionArgs, key: string, payload: unknown): Promise<ExecutionResult> {
  sharingStats.deliveries++;
  const run = async () => {
    sharingStats.executions++;
    return (await execute({ ...args, rootValue: payload })) as ExecutionResult;
  };
  if (typeof payload !== 'object' || payload === null) return run();
  let byKey = executions.get(payload);
  if (!byKey) executions.set(payload, (byKey = new Map()));
  let execution = byKey.get(key);
  if (!execution) {
    execution = run().then((result) => {
      const seq = (payload as { seq?: unknown }).seq;
      // The event's number travels with the shared result (the edge's `extensions.seq`), so no subscriber adds its own copy.
      const withSeq = typeof seq === 'number' && !result.errors?.length ? { ...result, extensions: { ...result.extensions, seq } } : result;
      return result.errors?.length ? withSeq : share(withSeq);
    });
    byKey.set(key, execution);
  }
  const seq = (payload as { seq?: unknown }).seq;
  if (typeof seq === 'number') noteSeq(args.contextValue as object, seq);
  return execution;
}

/** The subscription's stream of shared results: its own source stream, each event executed once per key. */
async function sharedSubscribe(args: ExecutionArgs, key: string): Promise<AsyncIterableIterator<ExecutionResult> | ExecutionResult> {
  const source = await createSourceEventStream(args);
  if (!(Symbol.asyncIterator in source)) return source as ExecutionResult;
  const events = source as AsyncIterableIterator<unknown>;
  const operation = getOperationAST(args.document, args.operationName);
  // A step the graphql-ws edge took past envelop's hooks and handed back to go through them (`withoutHooksForShared`).
  let putBack: Promise<IteratorResult<ExecutionResult>> | null = null;
  const produce = async (): Promise<IteratorResult<ExecutionResult>> => {
    let step: IteratorResult<unknown>;
    try {
      step = await events.next();
    } catch (error) {
      // As graphql's own mapping does: what the stream threw goes to the client as an error of the operation.
      throw createGraphQLError((error as Error).message, { originalError: error as Error, nodes: operation ? [operation] : [] });
    }
    if (step.done) return { done: true, value: undefined };
    return { done: false, value: await executeShared(args, key, step.value) };
  };
  const iterator: AsyncIterableIterator<ExecutionResult> = {
    next() {
      const step = putBack ?? produce();
      putBack = null;
      return step;
    },
    async return() {
      await events.return?.();
      return { done: true, value: undefined };
    },
    async throw(error?: unknown) {
      await events.return?.();
      throw error;
    },
    [Symbol.asyncIterator]: () => iterator,
  };
  if (typeof args.contextValue === 'object' && args.contextValue !== null)
    streams.set(args.contextValue, { pull: () => iterator.next(), putBack: (step) => void (putBack = step) });
  return iterator;
}

/** Per subscription (its context), its stream of shared results, for `withoutHooksForShared`. */
const streams = new WeakMap<object, { pull(): Promise<IteratorResult<ExecutionResult>>; putBack(step: Promise<IteratorResult<ExecutionResult>>): void }>();

/**
 * A subscription's stream as envelop returned it (its plugins' per-result hooks around the stream above), taking each
 * shared result straight from the stream: this server's hooks do nothing to a shared result (it has no errors to mask
 * or audit, and carries its event's number: `useMaskedErrors`, `useRefusalAudit`, `useEventIds`), yet running them
 * took ~6 KB of promises per delivery, half of what S4's 62,000 deliveries allocated. Anything else (a result with
 * errors, a failure, the end) is handed back to envelop's iterator and goes through every hook as before. A plugin
 * added later whose hook must see every result, shared ones too, ends this shortcut.
 */
export function withoutHooksForShared(contextValue: unknown, hooked: AsyncIterableIterator<ExecutionResult>): AsyncIterableIterator<ExecutionResult> {
  const stream = typeof contextValue === 'object' && contextValue !== null ? streams.get(contextValue) : undefined;
  if (!stream) return hooked;
  const iterator: AsyncIterableIterator<ExecutionResult> = {
    async next() {
      const step = stream.pull();
      try {
        const { done, value } = await step;
        if (!done && sharedResults.has(value)) {
          sharingStats.unhooked++;
          return { done: false, value };
        }
      } catch {
        // thrown through envelop's hooks below (masked), as before
      }
      stream.putBack(step);
      return hooked.next();
    },
    return: () => hooked.return?.() ?? Promise.resolve({ done: true, value: undefined }),
    throw: (error?: unknown) => hooked.throw?.(error) ?? Promise.reject(error),
    [Symbol.asyncIterator]: () => iterator,
  };
  return iterator;
}

/** Shares the execution of the subscriptions named in `shareable` (root fields whose results depend on the event, the document and the key's access only). */
export function useSharedSubscriptionResults(options: { shareable: ReadonlySet<string> }): Plugin {
  return {
    onSubscribe({ args, setSubscribeFn }) {
      const operation = getOperationAST(args.document, args.operationName);
      const field = operation ? rootField(operation) : null;
      if (!field || !options.shareable.has(field)) return;
      const ctx = args.contextValue as unknown as Context;
      if (!ctx?.identity || !ctx.ability) return;
      const key = JSON.stringify([textOf(args.document), args.operationName ?? null, args.variableValues ?? null, accessKey(ctx)]);
      setSubscribeFn((subscribeArgs) => sharedSubscribe(subscribeArgs as ExecutionArgs, key));
    },
  };
}
