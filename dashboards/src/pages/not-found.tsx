// What an unknown address shows.
import { NotFoundState } from '../components/states';
import { useTitle } from '../lib/title';

export function NotFoundPage() {
  useTitle('Not found');
  return <NotFoundState title="There is no page here" href="/runs" link="Go to the runs" />;
}
