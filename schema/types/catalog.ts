// The interactive dataset catalog: whether a dataset is published there and what keeps it out, and publishing
// and withdrawing (server/governance/catalog.ts decides).

import type { Dataset } from '../../server/db/tables/governance';
import { catalogBlockersOf, formatBlocker, publishDatasetToCatalog, withdrawDatasetFromCatalog } from '../../server/governance/catalog';
import { builder } from '../builder';
import { DatasetRef } from './datasets';
import { IdentityRef } from './identity';

const CatalogStateRef = builder.objectRef<Dataset>('DatasetCatalogState').implement({
  description: 'Whether a dataset is in the interactive catalog, which shows only classified columns within its ceiling (ATELIER_CATALOG_CEILING).',
  fields: (t) => ({
    published: t.boolean({ resolve: (d) => d.catalogPublishedAt !== null }),
    publishedAt: t.expose('catalogPublishedAt', { type: 'DateTime', nullable: true }),
    publishedBy: t.field({ type: IdentityRef, nullable: true, resolve: (d) => d.catalogPublishedBy }),
    blockers: t.stringList({
      description: 'What keeps it out now, one line per column: UNCLASSIFIED, or a level or category beyond the ceiling. Empty: it may be published.',
      resolve: async (d, _a, ctx) => (await catalogBlockersOf(ctx.services.db, d.id, ctx.services.config.catalogCeiling)).map(formatBlocker),
    }),
  }),
});

builder.objectField(DatasetRef, 'catalog', (t) => t.field({ type: CatalogStateRef, resolve: (d) => d }));

builder.mutationFields((t) => ({
  publishDatasetToCatalog: t.field({
    type: DatasetRef,
    description:
      'Publishes a dataset (namespace writers only) to the interactive catalog; refused while any column is UNCLASSIFIED or beyond the catalog ceiling.',
    args: { name: t.arg.string({ required: true }) },
    resolve: (_root, args, ctx) => publishDatasetToCatalog(ctx.services.db, ctx.ability, ctx.identity, ctx.services.config.catalogCeiling, args.name),
  }),
  withdrawDatasetFromCatalog: t.field({
    type: DatasetRef,
    description: 'Takes a dataset out of the interactive catalog (namespace writers only).',
    args: { name: t.arg.string({ required: true }), reason: t.arg.string() },
    resolve: (_root, args, ctx) => withdrawDatasetFromCatalog(ctx.services.db, ctx.ability, ctx.identity, args.name, args.reason ?? null),
  }),
}));
