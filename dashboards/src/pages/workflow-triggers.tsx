// The workflow page's Triggers section: each trigger that starts this workflow (kind, source, overlap and rate
// policies, paused) with its recent firings (signal, the run that ended for a run's end, outcome, the run it started,
// linked), and pause / resume for whoever `viewerCan.change` allows.
import { useMutation } from '@urql/preact';
import { useState } from 'preact/hooks';
import { errorMessage, refetch } from '../api/client';
import { RunLink } from '../components/links';
import { PermittedButton } from '../components/permitted';
import { FormError, QueryState } from '../components/states';
import { DataTable } from '../components/table';
import { graphql, type ResultOf } from '../graphql';
import { count, Time } from '../lib/format';
import { useQuery } from '../lib/query';

const TRIGGERS = graphql(`
  query WorkflowTriggers($workflow: String!) {
    triggers(workflow: $workflow) {
      id name kind source paused overlap maxRunsPerMinute hookPath
      team { name }
      viewerCan { change { allowed reason } }
      firings(limit: 10) { id signalType signalSubject signalAt outcome message run { id status } signalRun { id status message } }
    }
  }
`);

const PAUSE = graphql(`mutation PauseTrigger($id: String!) { pauseTrigger(id: $id) { id paused } }`);
const RESUME = graphql(`mutation ResumeTrigger($id: String!) { resumeTrigger(id: $id) { id paused } }`);

type Trigger = ResultOf<typeof TRIGGERS>['triggers'][number];

const outcomeClass: Record<string, string> = { STARTED: 'ok', FAILED: 'warn', RATE_LIMITED: 'warn', PENDING: 'tag' };

export function TriggersCard({ workflow }: { workflow: string }) {
  const [result, reexecute] = useQuery({ query: TRIGGERS, variables: { workflow }, requestPolicy: 'cache-and-network' });
  const refresh = refetch(reexecute);
  return (
    <div class="card" data-testid="triggers">
      <h2 class="card-title">Triggers</h2>
      <QueryState
        data={result.data?.triggers}
        error={result.error}
        errorTitle="Triggers could not be loaded"
        retry={refresh}
        loading="Loading triggers…"
        empty={
          <p class="muted">
            No trigger starts this workflow (beyond schedules): <code>npx atelier trigger create {workflow} NAME --on …</code> adds one (docs/triggers.md).
          </p>
        }
      >
        {(triggers) => triggers.map((t) => <TriggerItem key={t.id} trigger={t} onChange={refresh} />)}
      </QueryState>
    </div>
  );
}

function TriggerItem({ trigger: t, onChange }: { trigger: Trigger; onChange(): void }) {
  const [error, setError] = useState<string | null>(null);
  const [pauseState, pause] = useMutation(PAUSE);
  const [resumeState, resume] = useMutation(RESUME);
  const toggle = async () => {
    setError(null);
    const r = t.paused ? await resume({ id: t.id }) : await pause({ id: t.id });
    if (r.error) setError(errorMessage(r.error));
    else onChange();
  };
  return (
    <div class="trigger" data-trigger={t.name}>
      <h3>
        {t.name} <span class="chip tag">{t.kind.toLowerCase().replace('_', ' ')}</span>{' '}
        {t.paused ? <span class="chip warn">paused</span> : <span class="chip ok">active</span>}{' '}
        <PermittedButton permission={t.viewerCan.change} class="button small" disabled={pauseState.fetching || resumeState.fetching} onClick={toggle}>
          {t.paused ? 'Resume' : 'Pause'}
        </PermittedButton>
      </h3>
      <p class="muted">
        source {t.source ?? (t.kind === 'HTTP' ? <code>POST {t.hookPath}</code> : 'any of its team’s')} · overlap {t.overlap.toLowerCase()} · at most{' '}
        {count(t.maxRunsPerMinute, 'run')} a minute · team {t.team?.name ?? '—'}
      </p>
      <FormError message={error} />
      <DataTable
        wrap={false}
        label={`Recent firings of ${t.name}`}
        rows={t.firings}
        rowKey={(f) => f.id}
        rowProps={(f) => ({ 'data-firing': f.outcome })}
        empty={<p class="muted">It has not fired yet.</p>}
        columns={[
          { header: 'Signal', rowHeader: true, cell: (f) => <code>{f.signalType}</code> },
          {
            header: 'About',
            cell: (f) =>
              // a run's end: the run that ended (for a failure trigger, the one that failed, with why), not its workflow's id
              f.signalRun ? (
                <span data-signal-run={f.signalRun.id}>
                  <RunLink id={f.signalRun.id} /> {f.signalRun.status.toLowerCase()}
                  {f.signalRun.message && <div class="row-message">{f.signalRun.message}</div>}
                </span>
              ) : (
                f.signalSubject
              ),
          },
          { header: 'When', cell: (f) => <Time iso={f.signalAt} /> },
          {
            header: 'Outcome',
            cell: (f) => (
              <>
                <span class={`chip ${outcomeClass[f.outcome] ?? ''}`}>{f.outcome.toLowerCase().replace('_', ' ')}</span>
                {f.message && <div class="row-message">{f.message}</div>}
              </>
            ),
          },
          { header: 'Run', cell: (f) => (f.run ? <RunLink id={f.run.id} /> : <span class="muted">none</span>) },
        ]}
      />
    </div>
  );
}
