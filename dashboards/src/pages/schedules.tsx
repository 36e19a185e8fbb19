// Cron schedules: each with its workflow, cron in its time zone, the next fire times and the latest fires
// (with the runs they started, a backfill's marked); pause, resume and backfill in place.
import { useMutation } from '@urql/preact';
import { useEffect, useState } from 'preact/hooks';
import { errorMessage, refetch } from '../api/client';
import { PermittedButton } from '../components/permitted';
import { EmptyState, FormError, QueryState } from '../components/states';
import { StatusBadge } from '../components/status';
import { DataTable } from '../components/table';
import { graphql } from '../graphql';
import { formatDateTime, Time } from '../lib/format';
import { useQuery } from '../lib/query';
import { useTitle } from '../lib/title';
import { Link, useLocation } from '../router';
import { BackfillForm } from './schedule-backfill';

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
      viewerCan { change { allowed reason } }
      nextFireTimes(count: 3)
      fires(limit: 3) { id fireTime outcome message backfill run { id status } }
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
  const [backfilling, setBackfilling] = useState<string | null>(null);
  const schedules = result.data?.schedules;
  // a run's "started by schedule X" leads here: that schedule's row is marked and scrolled to
  const highlighted = useLocation().query.get('schedule');
  useEffect(() => {
    const id = schedules?.find((s) => s.id === highlighted || s.name === highlighted)?.id;
    if (id) document.getElementById(`schedule-${id}`)?.scrollIntoView({ block: 'center' });
  }, [highlighted, Boolean(schedules)]);
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
      <FormError message={error} />
      <QueryState
        data={schedules}
        error={result.error}
        errorTitle="Schedules could not be loaded"
        retry={refetch(reexecute)}
        loading="Loading schedules…"
        empty={
          <EmptyState title="No schedules yet">
            <p>
              Start a workflow on a cron schedule with <code>npx atelier schedule create WORKFLOW --cron "0 6 * * *"</code>.
            </p>
          </EmptyState>
        }
      >
        {(schedules) => (
          <DataTable
            rows={schedules}
            rowKey={(s) => s.id}
            rowProps={(s) => ({
              'data-schedule': s.name,
              id: `schedule-${s.id}`,
              class: highlighted && (s.id === highlighted || s.name === highlighted) ? 'selected' : undefined,
            })}
            columns={[
              {
                header: 'Schedule',
                cell: (s) => (
                  <>
                    <strong>{s.name}</strong>
                    {s.paused && <span class="chip warn"> paused</span>}
                    <div class="row-message">
                      missed: {s.catchUp.toLowerCase()} · overlap: {s.overlap.toLowerCase().replace('_', ' ')}
                    </div>
                  </>
                ),
              },
              { header: 'Workflow', cell: (s) => <Link href={`/workflows/${encodeURIComponent(s.workflow.name)}`}>{s.workflow.name}</Link> },
              {
                header: 'Cron',
                cell: (s) => (
                  <>
                    <code>{s.cron}</code>
                    <div class="row-message">{s.timeZone}</div>
                  </>
                ),
              },
              {
                header: 'Next fire times',
                cell: (s) =>
                  s.nextFireTimes.length === 0 ? (
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
                  ),
              },
              {
                header: 'Latest fires',
                cell: (s) =>
                  s.fires.length === 0 ? (
                    <span class="muted">not fired yet</span>
                  ) : (
                    <ul class="plain">
                      {s.fires.map((f) => (
                        <li key={f.id} title={f.message ?? undefined}>
                          <Time iso={f.fireTime} /> {f.backfill && <span class="chip">backfill</span>}{' '}
                          {f.run ? (
                            <Link href={`/runs/${f.run.id}`}>
                              <StatusBadge status={f.run.status} />
                            </Link>
                          ) : (
                            <span class="chip">{f.outcome.toLowerCase().replaceAll('_', ' ')}</span>
                          )}
                        </li>
                      ))}
                      <li>
                        <Link href={`/runs?workflow=${encodeURIComponent(s.workflow.name)}&trigger=SCHEDULE`}>all scheduled runs</Link>
                      </li>
                    </ul>
                  ),
              },
              {
                header: 'Actions',
                hideHeader: true,
                cell: (s) => (
                  <>
                    <PermittedButton
                      permission={s.viewerCan.change}
                      class="button"
                      disabled={pauseState.fetching || resumeState.fetching}
                      onClick={() => toggle(s.id, s.paused)}
                      aria-label={`${s.paused ? 'Resume' : 'Pause'} ${s.name}`}
                    >
                      {s.paused ? 'Resume' : 'Pause'}
                    </PermittedButton>{' '}
                    <PermittedButton
                      permission={s.viewerCan.change}
                      class="button subtle"
                      onClick={() => setBackfilling(backfilling === s.id ? null : s.id)}
                      aria-label={`Backfill ${s.name}`}
                      aria-expanded={backfilling === s.id}
                    >
                      Backfill…
                    </PermittedButton>
                    {backfilling === s.id && <BackfillForm schedule={s} onClose={() => setBackfilling(null)} />}
                  </>
                ),
              },
            ]}
          />
        )}
      </QueryState>
    </section>
  );
}
