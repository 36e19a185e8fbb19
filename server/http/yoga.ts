// The GraphQL API as a yoga instance: the schema, the document limits, and each request's context (the caller's
// session from the shared token check, its CASL ability and the services; loaders live in the dataloader plugin).
import type { IncomingMessage } from 'node:http';
import { EnvelopArmorPlugin } from '@escape.tech/graphql-armor';
import { getOperationAST, Kind, type OperationDefinitionNode } from 'graphql';
import { createYoga, type Plugin, type YogaServerInstance } from 'graphql-yoga';
import { schema } from '../../schema';
import type { Context, Services } from '../../schema/context';
import { maskError } from '../../schema/errors';
import { sharedAbilityFor } from '../auth/ability';
import type { Instruments } from '../metrics/instruments';
import { useRefusalAudit } from './audit-refusals';
import { authenticate, type Session } from './authenticate';
import { useBodyLimit } from './body-limit';
import { useBoundedErrors } from './bounded-errors';
import { corsFor } from './cors';
import { boundedDocumentCache } from './document-cache';
import { useEventIds } from './event-ids';
import { useInputGuard } from './input-guard';
import { rejectTyped } from './limit-errors';
import { useOperationMetrics } from './operation-metrics';
import { peerOf } from './peer';
import { useSharedSubscriptionResults } from './shared-results';
import { useTypedVariableErrors } from './variable-errors';
import { apiLogger } from './yoga-logger';

export type ApiYoga = YogaServerInstance<Record<string, unknown>, Context>;

/**
 * Limits on any one GraphQL document; the dashboards' and CLI's largest operations stay well inside them. A refusal
 * at validation is reported typed, saying what to do (limit-errors.ts); the token limit's, at parsing, is typed already.
 */
const typed = { propagateOnRejection: false, onReject: [rejectTyped] };
const armorConfig = {
  maxDepth: { n: 12, ignoreIntrospection: true, ...typed },
  maxAliases: { n: 30, ...typed },
  maxDirectives: { n: 20, ...typed },
  maxTokens: { n: 4000 },
  costLimit: { maxCost: 20_000, ...typed },
  blockFieldSuggestion: { enabled: true },
};

/**
 * Mutations whose every write goes through the orchestrator's transaction, which kicks the webhook worker and the
 * trigger dispatcher itself when it wrote deliveries or signals (a run's end, a cancel) and the registry feed when it
 * registered versions: kicking them again after such a mutation wakes every loop (and, through the registry feed, a
 * NATS broadcast and the deployments' reconciler on every replica) for nothing, once per started run.
 */
const KICKS_ITS_OWN = new Set(['startRun', 'cloneRun', 'rerunRun', 'cancelRun']);

/** Whether an operation is a mutation that may have written what the loops read (any field outside KICKS_ITS_OWN). */
export function mayWakeLoops(operation: OperationDefinitionNode | null | undefined): boolean {
  if (operation?.operation !== 'mutation') return false;
  // A fragment at the root (never seen from our clients) is not looked into: kick, as before.
  return operation.selectionSet.selections.some((s) => s.kind !== Kind.FIELD || !KICKS_ITS_OWN.has(s.name.value));
}

const afterMutations = (then: () => void): Plugin => ({
  onExecute: ({ args }) => (mayWakeLoops(getOperationAST(args.document, args.operationName)) ? { onExecuteDone: () => then() } : undefined),
});

/**
 * The subscriptions whose events every subscriber receives as one object (the run feed; the deployment watcher's
 * changes, server/deployments/live.ts; the executors' change batches) and whose fields decide on nothing of the caller
 * beyond what the sharing key holds (its identity, grants and scopes): each such event is executed once per key.
 */
const SHAREABLE_SUBSCRIPTIONS: ReadonlySet<string> = new Set(['runEvents', 'allRunEvents', 'deploymentsChanged', 'deploymentChanged', 'executorsChanged']);

export function createApiYoga(options: { services: Services; logLevel: 'silent' | 'info' | 'debug'; instruments?: Instruments }): ApiYoga {
  const { services } = options;
  const { db } = services;
  return createYoga<Record<string, unknown>, Context>({
    schema,
    graphqlEndpoint: '/graphql',
    landingPage: false,
    logging: apiLogger(options.logLevel === 'debug' ? 'debug' : 'warn'),
    graphiql: { subscriptionsProtocol: 'WS' },
    batching: false,
    // Documents kept parsed only while short (http/document-cache.ts): a cache of long ones was a memory flood.
    parserAndValidationCache: boundedDocumentCache(),
    // Applied by useBodyLimit below instead, to the bodies the route has not read whole itself.
    maxRequestBodySize: false,
    // Same origin only, unless the operator lists origins (ATELIER_CORS_ORIGINS): yoga's default reflects any origin.
    cors: corsFor(services.config.corsOrigins),
    // Domain errors become GraphQL errors with their code here, at the edge; anything else is masked.
    maskedErrors: { maskError },
    // Hostile documents are refused at validation, before any resolver runs, on HTTP, SSE and graphql-ws alike
    // (the graphql-ws server validates through the same envelop): deep nesting, alias floods, huge documents;
    // and, in literals and variables alike, NUL characters and JSON nested too deep (useInputGuard).
    // Every refusal in a result is audited before the caller hears of it (useRefusalAudit).
    // A live event is executed once for every subscriber who shares its document and access (useSharedSubscriptionResults).
    // After a mutation the webhook worker looks for deliveries at once: a change may have written some in its
    // transaction (a model version registered, an alias moved); a pass that finds none costs one query. Not after
    // the run mutations, whose orchestrator kicks what it wrote for (mayWakeLoops).
    plugins: [
      ...(options.instruments ? [useOperationMetrics(options.instruments)] : []),
      EnvelopArmorPlugin(armorConfig),
      useInputGuard(),
      // Before the bounding, which may cut the message this reads.
      useTypedVariableErrors(),
      useBoundedErrors(),
      // Before the refusal audit, which wraps whatever subscribe function it finds (so it wraps this one).
      useSharedSubscriptionResults({ shareable: SHAREABLE_SUBSCRIPTIONS }),
      useRefusalAudit({ db }),
      useEventIds(),
      useBodyLimit(),
      afterMutations(() => {
        services.webhooks.kick();
        services.registryFeed.kick();
        services.triggers.kick(); // a signal recorded (a dataset version added, an alias moved)
      }),
    ],
    context: async (initial) => {
      // Over HTTP and SSE the token is in the request's header; over graphql-ws, in the connection params.
      const request = initial.request as Request | undefined;
      const connectionParams = (initial as { connectionParams?: Record<string, unknown> }).connectionParams;
      // Over HTTP the route has looked the header's token up already, while yoga read the request (routes/graphql.ts).
      const early = (initial as { session?: Promise<Session> }).session;
      // The node request the route or graphql-ws hands in (absent only for an in-process yoga.fetch).
      const req = (initial as { req?: IncomingMessage }).req;
      const peer = req && peerOf(req);
      const { token, identity, scopes, grants } = await (early ??
        authenticate(db, { authorization: request?.headers.get('authorization'), connectionParams, peer }));
      const lastEventId = request?.headers.get('last-event-id') ?? null;
      return { identity, token, scopes, ability: sharedAbilityFor(identity, grants, scopes), grants, services, lastEventId };
    },
  });
}
