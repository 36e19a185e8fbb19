// Which optional capabilities this server's API has, read once by introspection, so pages for datasets,
// savings and executors appear in the navigation as soon as their fields exist on the server.
import type { Client } from '@urql/core';
import { createContext } from 'preact';
import { useContext } from 'preact/hooks';

export interface Features {
  datasets: boolean;
  savings: boolean;
  executors: boolean;
}

export const noFeatures: Features = { datasets: false, savings: false, executors: false };

// Untyped on purpose: it asks about fields the committed schema may not have yet.
const FEATURES = `query Features {
  query: __type(name: "Query") { fields { name } }
}`;

type FieldList = { fields: { name: string }[] | null } | null;

export async function detectFeatures(client: Client): Promise<Features> {
  const result = await client.query<{ query: FieldList }>(FEATURES, {}, { requestPolicy: 'network-only' }).toPromise();
  if (!result.data) return noFeatures;
  const names = (type: FieldList) => new Set((type?.fields ?? []).map((f) => f.name));
  const query = names(result.data.query);
  return {
    datasets: query.has('datasets'),
    savings: query.has('cacheStats') || query.has('savings'),
    executors: query.has('executors') || query.has('pools'),
  };
}

export const FeaturesContext = createContext<Features>(noFeatures);
export const useFeatures = () => useContext(FeaturesContext);
