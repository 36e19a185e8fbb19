// Declassification requests waiting on this dataset's columns, approved or rejected here; the API refuses a
// decision by the request's own author (or by someone outside the owning team), and its message is shown as is.
import { useMutation, useQuery } from '@urql/preact';
import { useState } from 'preact/hooks';
import { errorMessage } from '../../api/client';
import { LabelChips } from '../../components/label-chips';
import { ErrorState, Loading } from '../../components/states';
import { Time } from '../../lib/format';
import { DECIDE, DECLASSIFICATIONS } from './documents';

export function DeclassificationsPanel({ dataset, onDecided }: { dataset: string; onDecided(): void }) {
  const [result, reexecute] = useQuery({ query: DECLASSIFICATIONS });
  const [decideState, decide] = useMutation(DECIDE);
  const [error, setError] = useState<string | null>(null);
  const pending = result.data?.declassifications.filter((d) => d.dataset === dataset);

  const doDecide = async (id: string, approve: boolean) => {
    setError(null);
    const r = await decide({ id, approve });
    if (r.error) return setError(errorMessage(r.error));
    reexecute({ requestPolicy: 'network-only' });
    onDecided();
  };

  return (
    <div class="card" role="region" aria-labelledby="declassifications-title">
      <h2 class="card-title" id="declassifications-title">
        Declassification requests
      </h2>
      {result.error && !pending ? (
        <ErrorState title="Declassification requests could not be loaded" error={result.error} retry={() => reexecute({ requestPolicy: 'network-only' })} />
      ) : !pending ? (
        <Loading label="Loading declassification requests…" />
      ) : pending.length === 0 ? (
        <p class="muted">
          None waiting. Ask for one with <code>npx atelier declassify request</code>; someone other than the author decides it.
        </p>
      ) : (
        <div class="table-wrap">
          <table aria-label="Pending declassifications">
            <thead>
              <tr>
                <th scope="col">Column</th>
                <th scope="col">From</th>
                <th scope="col">To</th>
                <th scope="col">Why</th>
                <th scope="col">Asked</th>
                <th scope="col">
                  <span class="visually-hidden">Decision</span>
                </th>
              </tr>
            </thead>
            <tbody>
              {pending.map((d) => (
                <tr key={d.id} data-declassification={d.id}>
                  <th scope="row">
                    <code>{d.column}</code>
                  </th>
                  <td>
                    <LabelChips label={d.from} />
                  </td>
                  <td>
                    <LabelChips label={d.to} />
                  </td>
                  <td>{d.reason}</td>
                  <td>
                    {d.requestedBy.name}, <Time iso={d.createdAt} />
                  </td>
                  <td>
                    <span class="button-row">
                      <button type="button" class="button primary small" disabled={decideState.fetching} onClick={() => doDecide(d.id, true)} aria-label={`Approve declassifying ${d.column}`}>
                        Approve
                      </button>
                      <button type="button" class="button small" disabled={decideState.fetching} onClick={() => doDecide(d.id, false)} aria-label={`Reject declassifying ${d.column}`}>
                        Reject
                      </button>
                    </span>
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
      {error && (
        <p class="form-error" role="alert">
          {error}
        </p>
      )}
    </div>
  );
}
