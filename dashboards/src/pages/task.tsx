// `/tasks/ID`: where a task mentioned by id alone (an audit subject) leads; it opens its run with the task selected.

import { useEffect } from 'preact/hooks';
import { refetch } from '../api/client';
import { taskHref } from '../components/links';
import { NotFoundState, QueryState } from '../components/states';
import { graphql } from '../graphql';
import { useQuery } from '../lib/query';
import { useTitle } from '../lib/title';
import { Link, navigate } from '../router';

const TASK = graphql(`
  query TaskPage($id: ID!) {
    node(id: $id) { id ... on Task { node run { id } } }
  }
`);

export function TaskPage({ id }: { id: string }) {
  useTitle('Task');
  const [result, reexecute] = useQuery({ query: TASK, variables: { id } });
  const task = result.data?.node && 'run' in result.data.node ? result.data.node : null;
  const href = task?.run && task.node ? taskHref(task.run.id, task.node) : null;
  useEffect(() => {
    if (href) navigate(href, { replace: true });
  }, [href]);
  return (
    <QueryState
      data={href ?? (result.data ? null : undefined)}
      error={result.error}
      errorTitle="This task could not be loaded"
      retry={refetch(reexecute)}
      loading="Opening the task’s run…"
      empty={<NotFoundState title="No such task" href="/runs" link="See the runs" />}
    >
      {(to) => <Link href={to}>Open the task in its run</Link>}
    </QueryState>
  );
}
