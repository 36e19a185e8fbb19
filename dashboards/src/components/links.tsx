// Links to the objects pages mention, so every name leads to its page: a schedule (its row on the schedules page),
// a run, a task of a run.
import { Link } from '../router';

export const scheduleHref = (id: string) => `/schedules?schedule=${encodeURIComponent(id)}`;
export const taskHref = (runId: string, node: string) => `/runs/${runId}?task=${encodeURIComponent(node)}`;

export function ScheduleLink({ schedule }: { schedule: { id: string; name: string } }) {
  return (
    <Link href={scheduleHref(schedule.id)} title="The schedule that started this run">
      schedule {schedule.name}
    </Link>
  );
}

/** Where an audit subject (`dataset:ns/name.column`, `workflow:name`, `task:id`, …) is shown, if anywhere. */
export function subjectHref(subject: string): string | null {
  const colon = subject.indexOf(':');
  const kind = subject.slice(0, colon);
  const rest = subject.slice(colon + 1);
  if (!rest) return null;
  switch (kind) {
    case 'dataset': {
      const [namespace, name] = rest.split('/');
      // a column subject is `ns/name.column`; dataset names carry no dot
      return namespace && name ? `/datasets/${encodeURIComponent(namespace)}/${encodeURIComponent(name.split('.')[0]!)}` : null;
    }
    case 'workflow':
      return `/workflows/${encodeURIComponent(rest)}`;
    case 'schedule':
      return scheduleHref(rest);
    case 'namespace':
      return `/modules?namespace=${encodeURIComponent(rest)}`;
    case 'task':
      return `/tasks/${encodeURIComponent(rest)}`;
    case 'run':
      return `/runs/${encodeURIComponent(rest)}`;
    default:
      return null;
  }
}

export function RunLink({ id }: { id: string }) {
  return <Link href={`/runs/${id}`}>run {id.slice(0, 8)}</Link>;
}
