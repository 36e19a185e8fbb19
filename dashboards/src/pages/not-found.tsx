// What an unknown address shows.
import { EmptyState } from '../components/states';
import { useTitle } from '../lib/title';
import { Link } from '../router';

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
