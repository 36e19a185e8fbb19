// Cron schedules: each with its workflow, cron in its time zone, the next fire times and the latest fires
// (with the runs they started); pause and resume in place.
import { useMutation, useQuery } from '@urql/preact';
import { useState } from 'preact/hooks';
import { errorMessage } from '../api/client';
import { EmptyState, ErrorState, Loading } from '../components/states';
import { StatusBadge } from '../components/status';
import { graphql } from '../graphql';
import { formatDateTime, Time } from '../lib/format';
import { useTitle } from '../lib/title';
import { Link } from '../router';

const SCHEDULES = graphql(`
  query Schedules {
    schedules {
      id
      name
      cron
      timeZone
      paused
      catchUp
      overlap
      workflow { name }
      nextFireTimes(count: 3)
      fires(limit: 3) { id fireTime outcome message run { id status } }
    }
  }
`);

const PAUSE = graphql(`
  mutation PauseSchedule($id: ID!) { pauseSchedule(id: $id) { id paused nextFireTimes(count: 3) } }
`);
const RESUME = graphql(`
  mutation ResumeSchedule($id: ID!) { resumeSchedule(id: $id) { id paused nextFireTimes(count: 3) } }
`);

/** A fire time as the schedule's own time zone reads it (the cron is written in that zone). */
function inZone(iso: string, timeZone: string): string {
  try {
    return new Intl.DateTimeFormat(undefined, { dateStyle: 'medium', timeStyle: 'short', timeZone, timeZoneName: 'short' }).format(new Date(iso));
  } catch {
    return formatDateTime(iso);
  }
}

export function SchedulesPage() {
  useTitle('Schedules');
  const [result, reexecute] = useQuery({ query: SCHEDULES });
  const [pauseState, pause] = useMutation(PAUSE);
  const [resumeState, resume] = useMutation(RESUME);
  const [error, setError] = useState<string | null>(null);
  const schedules = result.data?.schedules;
  const toggle = async (id: string, paused: boolean) => {
    setError(null);
    const r = paused ? await resume({ id }) : await pause({ id });
    if (r.error) setError(errorMessage(r.error));
  };
  return (
    <section aria-labelledby="schedules-title">
      <div class="page-header">
        <h1 id="schedules-title">Schedules</h1>
      </div>
      {error && (
        <p class="form-error" role="alert">
          {error}
        </p>
      )}
      {result.error && !schedules ? (
        <ErrorState title="Schedules could not be loaded" error={result.error} retry={() => reexecute({ requestPolicy: 'network-only' })} />
      ) : !schedules ? (
        <Loading label="Loading schedules…" />
      ) : schedules.length === 0 ? (
        <EmptyState title="No schedules yet">
          <p>
            Start a workflow on a cron schedule with <code>npx atelier schedule create WORKFLOW --cron "0 6 * * *"</code>.
          </p>
        </EmptyState>
      ) : (
        <div class="table-wrap">
          <table>
            <thead>
              <tr>
                <th scope="col">Schedule</th>
                <th scope="col">Workflow</th>
                <th scope="col">Cron</th>
                <th scope="col">Next fire times</th>
                <th scope="col">Latest fires</th>
                <th scope="col">
                  <span class="visually-hidden">Actions</span>
                </th>
              </tr>
            </thead>
            <tbody>
              {schedules.map((s) => (
                <tr key={s.id} data-schedule={s.name}>
                  <td>
                    <strong>{s.name}</strong>
                    {s.paused && <span class="chip warn"> paused</span>}
                    <div class="row-message">
                      missed: {s.catchUp.toLowerCase()} · overlap: {s.overlap.toLowerCase().replace('_', ' ')}
                    </div>
                  </td>
                  <td>
                    <Link href={`/workflows/${encodeURIComponent(s.workflow.name)}`}>{s.workflow.name}</Link>
                  </td>
                  <td>
                    <code>{s.cron}</code>
                    <div class="row-message">{s.timeZone}</div>
                  </td>
                  <td>
                    {s.nextFireTimes.length === 0 ? (
                      <span class="muted">{s.paused ? 'none while paused' : 'none'}</span>
                    ) : (
                      <ul class="plain" aria-label={`Next fire times of ${s.name}`}>
                        {s.nextFireTimes.map((at) => (
                          <li key={at}>
                            <time dateTime={at} title={formatDateTime(at)}>
                              {inZone(at, s.timeZone)}
                            </time>
                          </li>
                        ))}
                      </ul>
                    )}
                  </td>
                  <td>
                    {s.fires.length === 0 ? (
                      <span class="muted">not fired yet</span>
                    ) : (
                      <ul class="plain">
                        {s.fires.map((f) => (
                          <li key={f.id} title={f.message ?? undefined}>
                            <Time iso={f.fireTime} />{' '}
                            {f.run ? (
                              <Link href={`/runs/${f.run.id}`}>
                                <StatusBadge status={f.run.status} />
                              </Link>
                            ) : (
                              <span class="chip">{f.outcome.toLowerCase().replaceAll('_', ' ')}</span>
                            )}
                          </li>
                        ))}
                      </ul>
                    )}
                  </td>
                  <td>
                    <button
                      type="button"
                      class="button"
                      disabled={pauseState.fetching || resumeState.fetching}
                      onClick={() => toggle(s.id, s.paused)}
                      aria-label={`${s.paused ? 'Resume' : 'Pause'} ${s.name}`}
                    >
                      {s.paused ? 'Resume' : 'Pause'}
                    </button>
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
    </section>
  );
}
