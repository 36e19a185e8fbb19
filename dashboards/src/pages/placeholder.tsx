// PLACEHOLDERS for pages whose API is being built: datasets, savings, executors. Each appears in
// the navigation only when api/features.ts finds its fields on the server; replace the placeholder with the
// real page (and its typed queries, after `npm run codegen:dashboards`) when the schema has them.
import type { Features } from '../api/features';
import { useFeatures } from '../api/features';
import { EmptyState } from '../components/states';
import { useTitle } from '../lib/title';
import { Link } from '../router';

export interface Placeholder {
  path: string;
  title: string;
  feature: keyof Features;
  what: string;
}

export const placeholders: Placeholder[] = [
  { path: '/datasets', title: 'Datasets', feature: 'datasets', what: 'datasets with their columns and classification chips, unclassified columns flagged' },
  { path: '/savings', title: 'Savings', feature: 'savings', what: 'cache hit rate and hours saved over time, by team, workflow and module' },
  { path: '/executors', title: 'Executors', feature: 'executors', what: 'executors and pools with their live status' },
];

export function PlaceholderPage({ title, feature, what }: Placeholder) {
  useTitle(title);
  const available = useFeatures()[feature];
  return (
    <EmptyState title={`${title}: coming soon`}>
      <p>This page will show {what}.</p>
      <p class="muted">
        {available ? 'The API has these fields now; the page is being built.' : 'This control plane’s API does not offer it yet.'} <Link href="/runs">Back to runs</Link>
      </p>
    </EmptyState>
  );
}

export function NotFoundPage() {
  useTitle('Not found');
  return (
    <EmptyState title="There is no page here">
      <p>
        <Link href="/runs">Go to the runs</Link>.
      </p>
    </EmptyState>
  );
}
