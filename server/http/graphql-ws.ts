// GraphQL subscriptions (and queries) over graphql-ws on `/graphql`, run through yoga's envelop so the same
// context, document limits and validation apply as over HTTP. A connection needs a live token in its params.
import { randomUUID } from 'node:crypto';
import type { Server } from 'node:http';
import { type DocumentNode, type ExecutionArgs, type execute, GraphQLError, type subscribe } from 'graphql';
import { useServer } from 'graphql-ws/use/ws';
import { WebSocketServer } from 'ws';
import { traceHop, tracing } from '../../plugins/trace';
import { toGraphQLError } from '../../schema/errors';
import type { Db } from '../db/client';
import { domainErrorOf } from '../errors';
import { authenticated } from './authenticate';
import { peerOf } from './peer';
import { sharedJsonOf, withoutHooksForShared } from './shared-results';
import type { ApiYoga } from './yoga';

/** WebSocket's close code 1013, Try Again Later: a condition of the server's that passes (graphql-ws clients retry). */
const TRY_AGAIN_LATER = 1013;
/** graphql-ws' "too many requests" close code (its CloseCode.TooManyInitialisationRequests). */
const TOO_MANY_AUTH_FAILURES = 4429;
/** WebSocket's close code 1012, Service Restart: graphql-ws clients reconnect (and resubscribe) on their own. */
const SERVICE_RESTART = 1012;

export interface GraphqlWs {
  /**
   * Stops accepting sockets and tells every open one the server restarts (1012), a close its client answers by
   * connecting again (to another replica) and resubscribing: live events resume from the client's last `seq`.
   */
  restart(): void;
  /** Drops every socket still open and stops accepting new ones. */
  close(): void;
}

export function attachGraphqlWs(server: Server, options: { yoga: ApiYoga; db: Db; maxPayloadBytes: number }): GraphqlWs {
  const { yoga, db } = options;
  const wss = new WebSocketServer({ server, path: '/graphql', maxPayload: options.maxPayloadBytes });
  const asErrors = (error: unknown) => [error instanceof GraphQLError ? error : new GraphQLError((error as Error).message)];
  // One socket's operations are prepared (token check, parse, validation) one after another: a client that sends a
  // burst of them queues behind itself, not in front of every other request of the server.
  const turns = new WeakMap<object, Promise<unknown>>();
  const inTurn = <T>(socket: object, prepare: () => Promise<T>): Promise<T> => {
    const prepared = (turns.get(socket) ?? Promise.resolve()).then(prepare, prepare);
    turns.set(
      socket,
      prepared.catch(() => undefined),
    );
    return prepared;
  };
  // A result shared by many subscribers (server/http/shared-results.ts) is serialized once: graphql-ws writes each
  // message with JSON.stringify and this replacer, which puts a marker where the payload goes and keeps the shared
  // JSON aside; the socket's send, called at once after (graphql-ws stringifies and sends in one synchronous step),
  // puts that JSON in the marker's place. So a message costs its envelope (`id`, `type`), not its payload.
  const placeholder = `\u0000shared-${randomUUID()}`;
  const marker = JSON.stringify(placeholder);
  let pendingJson: string | null = null;
  const replacer = (key: string, value: unknown) => {
    if (key !== 'payload') return value;
    const json = sharedJsonOf(value);
    if (json === undefined) return value;
    pendingJson = json;
    return placeholder;
  };
  wss.on('connection', (socket) => {
    const send = socket.send.bind(socket) as (data: unknown, cb?: (error?: Error) => void) => void;
    socket.send = ((data: unknown, cb?: (error?: Error) => void) => {
      if (pendingJson !== null && typeof data === 'string') {
        const at = data.lastIndexOf(marker);
        if (at >= 0) data = data.slice(0, at) + pendingJson + data.slice(at + marker.length);
        pendingJson = null;
      }
      if (tracing() && typeof data === 'string' && data.includes('"TaskProgressEvent"')) {
        const runId = /"runId":"([^"]+)"/.exec(data)?.[1];
        if (runId) traceHop('control plane: graphql-ws frame sent', runId);
      }
      send(data, cb);
    }) as typeof socket.send;
  });
  useServer(
    {
      jsonMessageReplacer: replacer,
      // A shared result goes out as it is (no copy), so the replacer recognises it.
      onNext: (_ctx, _id, _payload, _args, result) => (sharedJsonOf(result) === undefined ? undefined : result),
      execute: (args) => (args.rootValue as { execute: typeof execute }).execute(args as ExecutionArgs),
      subscribe: async (args) => {
        const result = await (args.rootValue as { subscribe: typeof subscribe }).subscribe(args as ExecutionArgs);
        return Symbol.asyncIterator in result ? withoutHooksForShared(args.contextValue, result) : result;
      },
      onConnect: async (ctx) => {
        try {
          return Boolean(await authenticated(db, { connectionParams: ctx.connectionParams ?? {}, peer: peerOf(ctx.extra.request) }));
        } catch (error) {
          // The database is unreachable (restarting): closed as "try again later", which graphql-ws clients retry,
          // not as graphql-ws's internal error (4500), after which they give up for good.
          const known = domainErrorOf(error);
          if (known?.code === 'TOO_MANY_AUTH_FAILURES') {
            // An address past its limit of failed tokens: closed with 4429, which graphql-ws clients do not retry.
            ctx.extra.socket.close(TOO_MANY_AUTH_FAILURES, `Too many failed tokens from this address: retry in ${known.retryAfterS} s.`);
            return false;
          }
          if (known?.code !== 'UNAVAILABLE') throw error;
          ctx.extra.socket.close(TRY_AGAIN_LATER, 'The database cannot be reached just now: connect again shortly.');
          return false;
        }
      },
      onSubscribe: (ctx, _id, payload) =>
        inTurn(ctx.extra.socket, async () => {
          const enveloped = yoga.getEnveloped({
            ...ctx,
            req: ctx.extra.request,
            socket: ctx.extra.socket,
            params: payload,
            connectionParams: ctx.connectionParams,
          });
          let document: DocumentNode;
          try {
            document = enveloped.parse(payload.query);
          } catch (error) {
            // A syntax error, or a document the parse-time limits refuse: answered as errors, never a closed socket.
            return asErrors(error);
          }
          let contextValue: unknown;
          try {
            contextValue = await enveloped.contextFactory();
          } catch (error) {
            // A domain error (the database unreachable: UNAVAILABLE) answers this operation alone; thrown, it closed
            // the socket with every subscription on it (4500, which graphql-ws clients do not retry).
            const known = domainErrorOf(error);
            if (!known) throw error;
            return [toGraphQLError(known)];
          }
          const args = {
            schema: enveloped.schema,
            operationName: payload.operationName,
            document,
            variableValues: payload.variables,
            contextValue,
            rootValue: { execute: enveloped.execute, subscribe: enveloped.subscribe },
          };
          let errors: readonly GraphQLError[];
          try {
            errors = enveloped.validate(args.schema, args.document);
          } catch (error) {
            return asErrors(error); // the armor rules throw
          }
          if (errors.length) return errors;
          return args;
        }),
    },
    wss,
  );
  return {
    restart() {
      for (const client of wss.clients) client.close(SERVICE_RESTART, 'The server is restarting: connect again.');
      wss.close();
    },
    close() {
      for (const client of wss.clients) client.terminate();
      wss.close();
    },
  };
}
