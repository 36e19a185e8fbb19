// Loaders several fields share (a module's versions feed `versions`, `latestVersion` and `usage`), cached per
// request by the dataloader plugin like the loadable types' own: one query per loader per request, however many
// objects ask. A loader only one field uses is that field's own (`t.loadable…`).
import { dataloaderGetter } from '@pothos/plugin-dataloader';
import type { Context } from './context';

/** One value per key, in the keys' order, from one call for all the keys a request asked for. */
export function sharedLoader<K, V>(load: (keys: K[], ctx: Context) => Promise<readonly V[]>) {
  return dataloaderGetter<K, V, K>(undefined, (keys, ctx) => load(keys, ctx as Context), undefined, false);
}

/** The rows belonging to each key (in the order `load` returned them), from one call for all keys. */
export function groupLoader<T>(load: (keys: string[], ctx: Context) => Promise<T[]>, keyOf: (row: T) => string) {
  return sharedLoader<string, T[]>(async (keys, ctx) => groupBy(keys, await load(keys, ctx), keyOf));
}

export function groupBy<T>(keys: readonly string[], rows: T[], keyOf: (row: T) => string): T[][] {
  const groups = new Map<string, T[]>();
  for (const row of rows) {
    const key = keyOf(row);
    const list = groups.get(key);
    if (list) list.push(row);
    else groups.set(key, [row]);
  }
  return keys.map((k) => groups.get(k) ?? []);
}
