// The CASL ability of one request, built from its identity's role, its teams' grants and the scopes of the
// token it came with. Every rule lists its fields explicitly (server/auth/fields.ts): a field in no rule is
// readable by nobody. Deny overrides allow, and no rule means deny. Every resolver (through Pothos scope-auth,
// with an instance check on each object it returns), the orchestrator and the dispatcher ask the ability,
// never the role.
import { AbilityBuilder, createMongoAbility, type ForcedSubject, type MongoAbility, type RawRuleOf, subject } from '@casl/ability';
import type { Identity } from '../db/tables/identities';
import { badInput, forbidden } from '../errors';
import type { Domain } from '../vocabulary';
import { allFields, dataFields, type FieldSubject, fieldSubjects, metaFields, ownFields } from './fields';

/** `administer`: what only admins do (identities, grants, the audit log, overriding ownership). */
export const actions = ['read', 'create', 'update', 'start', 'cancel', 'publish', 'administer'] as const;
export type Action = (typeof actions)[number];
export type SubjectType = 'all' | FieldSubject;

/** A team as an ability sees it: who may change its membership and its namespaces. */
export interface TeamSubject {
  name: string;
  /** Identities with role maintainer or admin in the team. */
  maintainers: string[];
}

/** A module namespace as an ability sees it: who may publish into it and move its tags. */
export interface NamespaceSubject {
  name: string;
  /** The owning team's name; null while no team owns it. */
  team: string | null;
  /** Identities with role member, maintainer or admin in the owning team. */
  writers: string[];
}

/** Anything in a domain (a run, a task with its run's domain, a workflow, a schedule, a dataset). */
export interface DomainSubject {
  domain: Domain;
}

/** A row checked as an instance (`subject('Run', run)`), so rules may depend on it. */
type Instance = { [S in FieldSubject]: object & ForcedSubject<S> }[FieldSubject];

/** What an identity's teams grant beyond its role. */
export interface Grants {
  /** Domains its teams may start runs in, and whose run data (parameters, outputs, logs) they may read. */
  domains: Domain[];
}
export type AppAbility = MongoAbility<[Action, SubjectType | Instance]>;

export const teamSubject = (team: TeamSubject) => subject('Team', team);
export const namespaceSubject = (ns: NamespaceSubject) => subject('Namespace', ns);

/** Domains whose run data an identity may read: experimentation is open to every role, the others need a grant. */
export const readableDomains = (grants: Grants): Domain[] => [...new Set<Domain>(['experimentation', ...grants.domains])];

/** Read by their managers only (a team's writing members), not by every role: see `managedBy` below. */
const teamPrivate: FieldSubject[] = ['Webhook', 'WebhookDelivery'];
const readable: FieldSubject[] = fieldSubjects.filter((s) => s !== 'AuditEvent' && !teamPrivate.includes(s));

/**
 * A token's scopes: `action:Subject` pairs (`read:Run`, `start:Run`, `publish:Module`), `*` for every subject
 * (`read:*`). A scoped token can do only what both its identity and its scopes allow; null: no narrowing.
 */
export type TokenScopes = string[] | null;

/**
 * Subjects a scope may name that are no GraphQL type: `read:Metrics` lets a service token scrape `GET /metrics`
 * (server/http/routes/metrics.ts). No ability rule names them, so they give nothing in the API.
 */
export const scopeOnlySubjects = ['Metrics'] as const;
export type ScopeSubject = FieldSubject | (typeof scopeOnlySubjects)[number];
const scopeSubjects: readonly string[] = [...fieldSubjects, ...scopeOnlySubjects];

export function parseScopes(scopes: string[]): { action: Action; subject: ScopeSubject | '*' }[] {
  return scopes.map((scope, i) => {
    const [action, subjectType, extra] = scope.split(':');
    if (extra !== undefined || !actions.includes(action as Action) || !(subjectType === '*' || scopeSubjects.includes(subjectType!))) {
      throw badInput(
        `scopes.${i} "${scope}" is not a scope: use ACTION:SUBJECT with ACTION one of ${actions.join(', ')} and SUBJECT one of ${scopeSubjects.join(', ')} or *, e.g. read:Run or start:Run.`,
      );
    }
    return { action: action as Action, subject: subjectType as ScopeSubject | '*' };
  });
}

export function defineAbilityFor(identity: Pick<Identity, 'id' | 'role'>, grants: Grants = { domains: [] }, scopes: TokenScopes = null): AppAbility {
  const { can, build, rules } = new AbilityBuilder<AppAbility>(createMongoAbility);
  // Every rule names its fields: the subject's meta fields, and its data fields only where the domain allows.
  const allow = (action: Action, s: FieldSubject, conditions?: object, fields = allFields(s)) => can(action, s, fields, conditions as never);
  const readWithin = (s: FieldSubject, within: Domain[]) => {
    allow('read', s, undefined, metaFields(s));
    if (dataFields(s).length) allow('read', s, { domain: { $in: within } }, dataFields(s));
    if (ownFields(s).length) allow('read', s, { createdBy: identity.id }, ownFields(s));
  };
  // A webhook (and its deliveries) is checked as an instance with `managers`: the writing members of its owning team.
  const managedBy = () => {
    for (const s of teamPrivate) allow('read', s, { managers: identity.id });
  };
  switch (identity.role) {
    case 'admin':
      for (const s of fieldSubjects) for (const action of actions) allow(action, s);
      break;
    case 'member':
      for (const s of readable) readWithin(s, readableDomains(grants));
      // A namespace is written only by its owning team's members (people and the team's CI service accounts).
      allow('publish', 'Module');
      allow('publish', 'Namespace', { writers: identity.id });
      // A team's maintainers manage its members and claim namespaces for it.
      allow('update', 'Team', { maintainers: identity.id });
      // Workflows and schedules change what runs in their domain: only in domains the identity may run in.
      for (const action of ['create', 'update'] as const) {
        allow(action, 'Workflow', { domain: { $in: readableDomains(grants) } });
        allow(action, 'Schedule', { domain: { $in: readableDomains(grants) } });
        allow(action, 'Trigger', { domain: { $in: readableDomains(grants) } });
      }
      allow('create', 'Dataset');
      // Runs start in experimentation freely; ad hoc and production need a grant to one of the identity's teams.
      allow('start', 'Run', { domain: { $in: readableDomains(grants) } });
      allow('cancel', 'Run', { domain: { $in: readableDomains(grants) } });
      allow('create', 'HotCluster');
      allow('update', 'HotCluster');
      // Which team's webhooks: decided by ownership (server/webhooks/subscriptions.ts), like hot clusters.
      allow('create', 'Webhook');
      allow('update', 'Webhook');
      managedBy();
      break;
    case 'viewer':
      for (const s of readable) readWithin(s, readableDomains(grants));
      managedBy();
      break;
  }
  if (scopes === null) return build();
  return createMongoAbility(narrow(rules, parseScopes(scopes)));
}

/** Whether a token's scopes name `action` on `subject` (or on every subject); null (unscoped) names everything. */
export function scopesAllow(scopes: TokenScopes | undefined, action: Action, subjectType: ScopeSubject): boolean {
  if (!scopes) return true;
  return parseScopes(scopes).some((s) => s.action === action && (s.subject === '*' || s.subject === subjectType));
}

/** Keeps of each rule only what a scope names: the intersection of the identity's rights and the token's scopes. */
function narrow(rules: RawRuleOf<AppAbility>[], scopes: { action: Action; subject: ScopeSubject | '*' }[]): RawRuleOf<AppAbility>[] {
  return rules.filter((rule) => scopes.some((s) => s.action === rule.action && (s.subject === '*' || s.subject === rule.subject)));
}

/** Whether the ability is an admin's (may administer identities, grants and the audit log). */
export const isAdmin = (ability: AppAbility) => ability.can('administer', 'Identity');

/** Throws FORBIDDEN with a message saying what was refused, unless the ability allows it. */
export function assertCan(ability: AppAbility, action: Action, subjectType: FieldSubject, what: string): void {
  if (!ability.can(action, subjectType)) throw forbidden(`You may not ${what}; ask an admin for a role that allows "${action}" on ${subjectType}.`);
}

/** What decides an ability entirely: `defineAbilityFor` is a function of these and nothing else. */
export const abilityKey = (identity: Pick<Identity, 'id' | 'role'>, grants: Grants = { domains: [] }, scopes: TokenScopes = null) =>
  JSON.stringify([identity.id, identity.role, [...grants.domains].sort(), scopes]);

// Abilities in use, by what they were built from. One ability weighs ~90 KB (147 rules with their field lists and
// CASL's indexes): a thousand live subscriptions of one dashboard token held a thousand identical ones (~90 MB).
// Abilities are never changed once built, so requests built from the same inputs share one while any holds it.
const built = new Map<string, WeakRef<AppAbility>>();
const collected = new FinalizationRegistry<string>((key) => {
  if (!built.get(key)?.deref()) built.delete(key);
});

/**
 * As `defineAbilityFor`, sharing the ability with any request still holding one built from the same identity, grants
 * and scopes. The inputs are read per request as before, so a revoked grant or token still counts on the very next one.
 */
export function sharedAbilityFor(identity: Pick<Identity, 'id' | 'role'>, grants: Grants = { domains: [] }, scopes: TokenScopes = null): AppAbility {
  const key = abilityKey(identity, grants, scopes);
  const held = built.get(key)?.deref();
  if (held) return held;
  const ability = defineAbilityFor(identity, grants, scopes);
  built.set(key, new WeakRef(ability));
  collected.register(ability, key);
  return ability;
}
