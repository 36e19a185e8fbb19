// urql's useQuery, answering only for the variables it was asked with. When a mounted component's variables change
// (another version's lineage, another filter, another page of a list), urql keeps the previous answer in `data` and
// `error` until the new one arrives, so a page would show one version's graph under another's title for as long as the
// request takes. Here an answer whose operation is not the current request's reads as "still loading". Every page
// imports useQuery from here (biome.jsonc forbids urql's own).
// biome-ignore lint/style/noRestrictedImports: the one place urql's useQuery is wrapped
import { type AnyVariables, createRequest, type UseQueryArgs, type UseQueryResponse, useQuery as urqlQuery } from '@urql/preact';
import { useMemo } from 'preact/hooks';

export function useQuery<Data = unknown, Variables extends AnyVariables = AnyVariables>(
  args: UseQueryArgs<Variables, Data>,
): UseQueryResponse<Data, Variables> {
  const [result, reexecute] = urqlQuery<Data, Variables>(args);
  const key = useMemo(() => createRequest(args.query, args.variables as Variables).key, [args.query, args.variables]);
  if (result.operation === undefined || result.operation.key === key) return [result, reexecute];
  return [{ ...result, data: undefined, error: undefined, fetching: !args.pause, stale: false }, reexecute];
}
