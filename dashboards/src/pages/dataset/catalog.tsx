// Whether the dataset is in the interactive catalog: who published it and when, or what keeps it out (one blocker
// per line, and Publish disabled while there are any); withdrawing asks for a reason, which the audit keeps.
import { useMutation } from '@urql/preact';
import { useState } from 'preact/hooks';
import { errorMessage } from '../../api/client';
import { PermittedButton } from '../../components/permitted';
import { FormError } from '../../components/states';
import { formatDateTime, Time } from '../../lib/format';
import { type DatasetData, PUBLISH, WITHDRAW } from './documents';

export function CatalogPanel({ dataset, onChange }: { dataset: DatasetData; onChange(): void }) {
  const { catalog } = dataset;
  const [publishState, publish] = useMutation(PUBLISH);
  const [withdrawState, withdraw] = useMutation(WITHDRAW);
  const [withdrawing, setWithdrawing] = useState(false);
  const [reason, setReason] = useState('');
  const [error, setError] = useState<string | null>(null);
  const blocked = catalog.blockers.length > 0;

  const doPublish = async () => {
    setError(null);
    const r = await publish({ name: dataset.fullName });
    if (r.error) setError(errorMessage(r.error));
    else onChange();
  };
  const doWithdraw = async (event: Event) => {
    event.preventDefault();
    setError(null);
    const r = await withdraw({ name: dataset.fullName, reason: reason.trim() });
    if (r.error) return setError(errorMessage(r.error));
    setWithdrawing(false);
    setReason('');
    onChange();
  };

  return (
    <section class="card" aria-labelledby="catalog-title" data-catalog={catalog.published ? 'published' : 'unpublished'}>
      <h2 class="card-title" id="catalog-title">
        Catalog {catalog.published ? <span class="chip ok">published</span> : <span class="chip">not published</span>}
      </h2>
      {catalog.published ? (
        <p>
          Published by {catalog.publishedBy?.name ?? 'someone no longer known'}{' '}
          {catalog.publishedAt && (
            <>
              <Time iso={catalog.publishedAt} /> <span class="muted">({formatDateTime(catalog.publishedAt)})</span>
            </>
          )}
          .
        </p>
      ) : blocked ? (
        <>
          <p id="catalog-blockers-title">It cannot be published to the interactive catalog while:</p>
          <ul class="plain-list blockers" aria-labelledby="catalog-blockers-title" data-testid="catalog-blockers">
            {catalog.blockers.map((b) => (
              <li key={b}>{b}</li>
            ))}
          </ul>
        </>
      ) : (
        <p class="muted">Every column is classified within the catalog's ceiling: it may be published.</p>
      )}
      <div class="button-row">
        {!catalog.published && (
          <PermittedButton
            permission={dataset.viewerCan.manageCatalog}
            class="button primary"
            onClick={doPublish}
            disabled={blocked || publishState.fetching}
            aria-describedby={blocked ? 'catalog-blockers-title' : undefined}
            title={blocked ? 'Resolve the blockers above first' : undefined}
          >
            {publishState.fetching ? 'Publishing…' : 'Publish to catalog'}
          </PermittedButton>
        )}
        {catalog.published && !withdrawing && (
          <PermittedButton permission={dataset.viewerCan.manageCatalog} class="button danger" onClick={() => setWithdrawing(true)}>
            Withdraw…
          </PermittedButton>
        )}
      </div>
      {withdrawing && (
        <form class="inline-form" aria-label="Withdraw from the catalog" onSubmit={doWithdraw}>
          <label>
            Reason for withdrawing
            {/* biome-ignore lint/a11y/noAutofocus: the field appears because the user chose to withdraw; focus moves to it */}
            <input value={reason} required autoFocus onInput={(e) => setReason(e.currentTarget.value)} />
          </label>
          <button type="submit" class="button danger" disabled={withdrawState.fetching || !reason.trim()}>
            {withdrawState.fetching ? 'Withdrawing…' : 'Withdraw'}
          </button>
          <button type="button" class="button" onClick={() => setWithdrawing(false)}>
            Keep it published
          </button>
        </form>
      )}
      <FormError message={error} />
    </section>
  );
}
