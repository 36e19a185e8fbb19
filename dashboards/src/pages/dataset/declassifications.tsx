// Declassification requests waiting on this dataset's columns, approved or rejected here; the API refuses a
// decision by the request's own author (or by someone outside the owning team), and its message is shown as is.
import { useMutation } from '@urql/preact';
import { useState } from 'preact/hooks';
import { errorMessage, refetch } from '../../api/client';
import { LabelChips } from '../../components/label-chips';
import { PermittedButton } from '../../components/permitted';
import { FormError, QueryState } from '../../components/states';
import { DataTable } from '../../components/table';
import { Time } from '../../lib/format';
import { useQuery } from '../../lib/query';
import { DECIDE, DECLASSIFICATIONS } from './documents';

export function DeclassificationsPanel({ dataset, onDecided }: { dataset: string; onDecided(): void }) {
  const [result, reexecute] = useQuery({ query: DECLASSIFICATIONS });
  const [decideState, decide] = useMutation(DECIDE);
  const [error, setError] = useState<string | null>(null);
  const pending = result.data?.declassifications.filter((d) => d.dataset === dataset);
  const refresh = refetch(reexecute);

  const doDecide = async (id: string, approve: boolean) => {
    setError(null);
    const r = await decide({ id, approve });
    if (r.error) return setError(errorMessage(r.error));
    refresh();
    onDecided();
  };

  return (
    <section class="card" aria-labelledby="declassifications-title">
      <h2 class="card-title" id="declassifications-title">
        Declassification requests
      </h2>
      <QueryState
        data={pending}
        error={result.error}
        errorTitle="Declassification requests could not be loaded"
        retry={refresh}
        loading="Loading declassification requests…"
        empty={
          <p class="muted">
            None waiting. Ask for one with <code>npx atelier declassify request</code>; someone other than the author decides it.
          </p>
        }
      >
        {(pending) => (
          <DataTable
            label="Pending declassifications"
            rows={pending}
            rowKey={(d) => d.id}
            rowProps={(d) => ({ 'data-declassification': d.id })}
            columns={[
              { header: 'Column', rowHeader: true, cell: (d) => <code>{d.column}</code> },
              { header: 'From', cell: (d) => <LabelChips label={d.from} /> },
              { header: 'To', cell: (d) => <LabelChips label={d.to} /> },
              { header: 'Why', cell: (d) => d.reason },
              {
                header: 'Asked',
                cell: (d) => (
                  <>
                    {d.requestedBy.name}, <Time iso={d.createdAt} />
                  </>
                ),
              },
              {
                header: 'Decision',
                hideHeader: true,
                cell: (d) => (
                  <span class="button-row">
                    <PermittedButton
                      permission={d.viewerCan.decide}
                      class="button primary small"
                      disabled={decideState.fetching}
                      onClick={() => doDecide(d.id, true)}
                      aria-label={`Approve declassifying ${d.column}`}
                    >
                      Approve
                    </PermittedButton>
                    {d.viewerCan.decide.allowed && (
                      <button
                        type="button"
                        class="button small"
                        disabled={decideState.fetching}
                        onClick={() => doDecide(d.id, false)}
                        aria-label={`Reject declassifying ${d.column}`}
                      >
                        Reject
                      </button>
                    )}
                  </span>
                ),
              },
            ]}
          />
        )}
      </QueryState>
      <FormError message={error} />
    </section>
  );
}
