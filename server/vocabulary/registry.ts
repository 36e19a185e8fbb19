// The model registry's words: promotion states, alias moves, registry event types, and a model's requirements.
export const promotionStates = ['PENDING', 'APPROVED', 'REJECTED'] as const;
export type PromotionState = (typeof promotionStates)[number];

/** How an alias came to point where it does: set directly, rolled back, or moved by an approved promotion. */
export const aliasActions = ['move', 'rollback', 'promote'] as const;
export type AliasAction = (typeof aliasActions)[number];

/** What the registry announces (one row each in `registry_events`, written in the transaction that made the change). */
export const registryEventTypes = [
  'model.created',
  'model.updated',
  'version.registered',
  'version.deprecated',
  'alias.moved',
  'promotion.requested',
  'promotion.decided',
] as const;
export type RegistryEventType = (typeof registryEventTypes)[number];

/** A bound a model declares on an evaluation metric of its versions (checked when promoting to production). */
export interface ModelRequirement {
  metric: string;
  min?: number | null;
  max?: number | null;
}

/** One file of a model version: its path under the registered output, and its bytes' digest in the object store. */
export interface ModelFile {
  path: string;
  digest: string;
  size: number;
}
