// Authorization in the schema, through Pothos scope-auth: every object type the API returns declares the CASL
// subject it is (`authScopes: guard('Run', 'Run')`), so each object is checked as an instance before any of
// its fields resolves, and every field of such a type is checked against the fields the ability's rules list
// (a plugin gives each field its scope, so a new field is denied until server/auth/fields.ts names it).
// Value types (a label, a log line, a pool summary) have no identity of their own: they are reached only
// through a guarded parent, and the schema test lists them.
import { subject as caslSubject } from '@casl/ability';
import { permittedFieldsOf } from '@casl/ability/extra';
import SchemaBuilder, { BasePlugin, type PothosOutputFieldConfig, type SchemaTypes } from '@pothos/core';
import { GraphQLError, type GraphQLResolveInfo } from 'graphql';
import { audit, markRecorded } from '../server/audit/audit';
import { allFields, dataFields, type FieldSubject, ownFields } from '../server/auth/fields';
import type { Context } from './context';

interface Guard {
  subject: FieldSubject;
  /** The instance the rules are checked against (a row, or a row with its run's domain). */
  of: (parent: never, ctx: Context) => object | Promise<object>;
}

/** Guarded GraphQL object types by name. */
export const guards = new Map<string, Guard>();

interface Access {
  readable: boolean;
  fields: Set<string>;
}

/** Per request, per guard (one object may be seen as two types), per object. */
const accessCache = new WeakMap<Context, Map<Guard, WeakMap<object, Access | Promise<Access>>>>();

function decide(ctx: Context, guard: Guard, row: object): Access {
  const instance = caslSubject(guard.subject, { ...row });
  const fields = permittedFieldsOf(ctx.ability, 'read', instance, { fieldsFrom: (rule) => (rule.fields ? [rule.fields].flat() : allFields(guard.subject)) });
  return { readable: ctx.ability.can('read', instance), fields: new Set(fields) };
}

/**
 * What the caller may read of one object: decided once per object per request, synchronously when the instance
 * needs no lookup (every field of a list of objects is then checked without a promise of its own).
 */
function accessOf(ctx: Context, guard: Guard, parent: object): Access | Promise<Access> {
  let perGuard = accessCache.get(ctx);
  if (!perGuard) accessCache.set(ctx, (perGuard = new Map()));
  let perRequest = perGuard.get(guard);
  if (!perRequest) perGuard.set(guard, (perRequest = new WeakMap()));
  let access = perRequest.get(parent);
  if (!access) {
    const row = guard.of(parent as never, ctx);
    access = row instanceof Promise ? row.then((r) => decide(ctx, guard, r)) : decide(ctx, guard, row);
    if (access instanceof Promise) {
      const pending = access;
      void pending.then(
        (decided) => perRequest!.set(parent, decided),
        () => undefined,
      );
    }
    perRequest.set(parent, access);
  }
  return access;
}

const readableOf = (access: Access | Promise<Access>) => (access instanceof Promise ? access.then((a) => a.readable) : access.readable);

/**
 * The type-level scope of an object type: an instance check of each object of it. `of` builds the instance
 * where the row alone does not say enough (a task is checked with its run's domain).
 */
export function guard<T extends object>(typeName: string, subject: FieldSubject, of?: (parent: T, ctx: Context) => object | Promise<object>) {
  const g: Guard = { subject, of: (of ?? ((parent: T) => parent)) as Guard['of'] };
  guards.set(typeName, g);
  return (parent: T, ctx: Context) => readableOf(accessOf(ctx, g, parent));
}

/** Whether the caller may read an object of a guarded type (its instance check). */
export async function mayReadObject(ctx: Context, typeName: string, parent: object): Promise<boolean> {
  const g = guards.get(typeName);
  return g ? readableOf(accessOf(ctx, g, parent)) : false;
}

/** Whether the caller may read one field of an object of a guarded type. */
export function mayReadField(ctx: Context, typeName: string, parent: object, field: string): boolean | Promise<boolean> {
  const g = guards.get(typeName);
  if (!g) return true;
  const decide = (access: Access) => access.fields.has(field) || auditedDenial(ctx, g, typeName, field, parent);
  const access = accessOf(ctx, g, parent);
  return access instanceof Promise ? access.then(decide) : decide(access);
}

const deniedThisRequest = new WeakMap<Context, Map<string, Promise<false>>>();

/**
 * A refused data field is a decision on data: audited (once per field per request, however many objects the
 * query reached) before the refusal is answered. Refused metadata fields are not data and are not audited.
 */
function auditedDenial(ctx: Context, guard: Guard, typeName: string, field: string, parent: object): false | Promise<false> {
  if (!(dataFields(guard.subject) as string[]).includes(field)) return false;
  let perRequest = deniedThisRequest.get(ctx);
  if (!perRequest) deniedThisRequest.set(ctx, (perRequest = new Map()));
  const key = `${typeName}.${field}`;
  let recorded = perRequest.get(key);
  if (!recorded) {
    const domain = (parent as { domain?: string }).domain ?? null;
    recorded = audit(ctx.services.db, {
      identity: ctx.identity,
      action: 'data.read',
      decision: 'deny',
      subject: `graphql:${key}`,
      rule: `${guard.subject === 'Workflow' ? 'a workflow’s spec' : 'run data'} is readable only in domains one of your teams is granted`,
      details: { type: typeName, field, ...(domain ? { domain } : {}), id: (parent as { id?: string }).id ?? null },
    }).then(() => false as const);
    perRequest.set(key, recorded);
  }
  return recorded;
}

/** The error of a refused object or field: it names what was refused, never a value, and how to get access. */
export function unauthorized(info: GraphQLResolveInfo, typeLevel: boolean): GraphQLError {
  const type = info.parentType.name;
  const g = guards.get(type);
  const field = info.fieldName;
  const dataField = !typeLevel && Boolean(g && (dataFields(g.subject) as string[]).includes(field));
  const message = typeLevel
    ? `You may not read this ${type}.`
    : dataField
      ? `${type}.${field} holds ${g?.subject === 'Workflow' ? 'a workflow spec (its parameter defaults), data' : 'run data'} of a domain none of your teams is granted; an admin grants one with \`npx atelier team grant TEAM DOMAIN\`.`
      : g && ownFields(g.subject).includes(field)
        ? `${type}.${field} is readable only by the identity that created this ${type} (and admins).`
        : `You may not read ${type}.${field}.`;
  // No HTTP status: a refused field leaves the rest of the response intact.
  const error = new GraphQLError(message, { extensions: { code: 'FORBIDDEN' } });
  // A refused data field was audited as a read of data (auditedDenial) before this answer: no second record.
  if (dataField) markRecorded(error);
  return error;
}

/** Gives every field of a guarded type the scope "the caller may read this field of this object". */
export class FieldAbilityPlugin<Types extends SchemaTypes> extends BasePlugin<Types> {
  override onOutputFieldConfig(fieldConfig: PothosOutputFieldConfig<Types>): PothosOutputFieldConfig<Types> {
    const typeName = fieldConfig.parentType;
    if (!guards.has(typeName) || fieldConfig.pothosOptions.authScopes) return fieldConfig;
    const field = fieldConfig.name;
    const authScopes = (parent: object, _args: unknown, ctx: Context) => mayReadField(ctx, typeName, parent, field);
    return { ...fieldConfig, pothosOptions: { ...fieldConfig.pothosOptions, authScopes } } as PothosOutputFieldConfig<Types>;
  }
}

declare global {
  export namespace PothosSchemaTypes {
    export interface Plugins<Types extends SchemaTypes> {
      fieldAbility: FieldAbilityPlugin<Types>;
    }
  }
}

SchemaBuilder.registerPlugin('fieldAbility', FieldAbilityPlugin);
