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
import { allFields, dataFields, type FieldSubject } from '../server/auth/fields';
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

const accessCache = new WeakMap<Context, WeakMap<object, Promise<Access>>>();

/** What the caller may read of one object: decided once per object per request. */
function accessOf(ctx: Context, guard: Guard, parent: object): Promise<Access> {
  let perRequest = accessCache.get(ctx);
  if (!perRequest) accessCache.set(ctx, (perRequest = new WeakMap()));
  let access = perRequest.get(parent);
  if (!access) {
    access = Promise.resolve(guard.of(parent as never, ctx)).then((row) => {
      const instance = caslSubject(guard.subject, { ...row });
      const fields = permittedFieldsOf(ctx.ability, 'read', instance, { fieldsFrom: (rule) => (rule.fields ? [rule.fields].flat() : allFields(guard.subject)) });
      return { readable: ctx.ability.can('read', instance), fields: new Set(fields) };
    });
    perRequest.set(parent, access);
  }
  return access;
}

/**
 * The type-level scope of an object type: an instance check of each object of it. `of` builds the instance
 * where the row alone does not say enough (a task is checked with its run's domain).
 */
export function guard<T extends object>(typeName: string, subject: FieldSubject, of?: (parent: T, ctx: Context) => object | Promise<object>) {
  const g: Guard = { subject, of: (of ?? ((parent: T) => parent)) as Guard['of'] };
  guards.set(typeName, g);
  return async (parent: T, ctx: Context) => (await accessOf(ctx, g, parent)).readable;
}

/** Whether the caller may read an object of a guarded type (its instance check). */
export async function mayReadObject(ctx: Context, typeName: string, parent: object): Promise<boolean> {
  const g = guards.get(typeName);
  return g ? (await accessOf(ctx, g, parent)).readable : false;
}

/** Whether the caller may read one field of an object of a guarded type. */
export async function mayReadField(ctx: Context, typeName: string, parent: object, field: string): Promise<boolean> {
  const g = guards.get(typeName);
  if (!g) return true;
  return (await accessOf(ctx, g, parent)).fields.has(field);
}

/** The error of a refused object or field: it names what was refused, never a value, and how to get access. */
export function unauthorized(info: GraphQLResolveInfo, typeLevel: boolean): GraphQLError {
  const type = info.parentType.name;
  const g = guards.get(type);
  const field = info.fieldName;
  const message = typeLevel
    ? `You may not read this ${type}.`
    : g && (dataFields(g.subject) as string[]).includes(field)
      ? `${type}.${field} holds run data of a domain none of your teams is granted; an admin grants one with \`npx atelier team grant TEAM DOMAIN\`.`
      : `You may not read ${type}.${field}.`;
  // No HTTP status: a refused field leaves the rest of the response intact.
  return new GraphQLError(message, { extensions: { code: 'FORBIDDEN' } });
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
