// A model's aliases (rolled back here), their history (who, from, to, when, why), and its promotion requests: the
// pending ones with Approve and Reject, enabled only for whoever `viewerCan.decide` allows (a second person
// holding the production grant); the refused see the reason.
import { useMutation } from '@urql/preact';
import { useState } from 'preact/hooks';
import { errorMessage } from '../../api/client';
import { PermittedButton } from '../../components/permitted';
import { FormError } from '../../components/states';
import { DataTable } from '../../components/table';
import { Time } from '../../lib/format';
import { DECIDE_PROMOTION, type ModelData, ROLLBACK_ALIAS } from './documents';

export function AliasesCard({ model, onChange }: { model: ModelData; onChange(): void }) {
  const [state, rollback] = useMutation(ROLLBACK_ALIAS);
  const [error, setError] = useState<string | null>(null);
  const doRollback = async (alias: string) => {
    setError(null);
    const r = await rollback({ model: model.fullName, alias, reason: 'rolled back from the dashboards' });
    if (r.error) setError(errorMessage(r.error));
    else onChange();
  };
  return (
    <div class="card">
      <h2 class="card-title">Aliases</h2>
      <DataTable
        wrap={false}
        label="Aliases"
        rows={model.aliases}
        rowKey={(a) => a.alias}
        rowProps={(a) => ({ 'data-alias': a.alias })}
        empty={<p class="muted">No aliases.</p>}
        columns={[
          { header: 'Alias', rowHeader: true, cell: (a) => <span class="chip tag">{a.alias}</span> },
          { header: 'Version', class: 'num', cell: (a) => a.version.version },
          { header: 'Domain', cell: (a) => a.domain },
          { header: 'Moved', cell: (a) => <Time iso={a.updatedAt} /> },
          { header: 'By', cell: (a) => a.updatedBy?.name ?? '—' },
          {
            header: 'Actions',
            hideHeader: true,
            cell: (a) => (
              <PermittedButton
                permission={model.viewerCan.moveAliases}
                class="button subtle small"
                onClick={() => doRollback(a.alias)}
                disabled={state.fetching}
                aria-label={`Roll back ${a.alias}`}
              >
                Roll back
              </PermittedButton>
            ),
          },
        ]}
      />
      <FormError message={error} />
      <h3>History</h3>
      <DataTable
        wrap={false}
        label="Alias history"
        rows={model.aliasHistory}
        rowKey={(_, i) => i}
        rowProps={(e) => ({ 'data-alias': e.alias, 'data-action': e.action })}
        empty={<p class="muted">No alias has moved yet.</p>}
        columns={[
          { header: 'When', cell: (e) => <Time iso={e.at} /> },
          { header: 'Alias', cell: (e) => <span class="chip tag">{e.alias}</span> },
          {
            header: 'Move',
            cell: (e) => (
              <>
                {e.from?.version ?? '∅'} → {e.to.version}
                {e.action !== 'move' && <span class="chip"> {e.action}</span>}
              </>
            ),
          },
          { header: 'By', cell: (e) => e.movedBy?.name ?? '—' },
          { header: 'Why', cell: (e) => e.reason },
        ]}
      />
    </div>
  );
}

type Promotion = ModelData['promotions'][number];

export function PromotionsCard({ model, onChange }: { model: ModelData; onChange(): void }) {
  const [state, decide] = useMutation(DECIDE_PROMOTION);
  const [error, setError] = useState<string | null>(null);
  const pending = model.promotions.filter((p) => p.state === 'PENDING');
  const decided = model.promotions.filter((p) => p.state !== 'PENDING').slice(0, 10);
  const doDecide = async (p: Promotion, approve: boolean) => {
    setError(null);
    const r = await decide({ id: p.id, approve, reason: approve ? 'approved from the dashboards' : 'rejected from the dashboards' });
    if (r.error) setError(errorMessage(r.error));
    else onChange();
  };
  return (
    <div class="card">
      <h2 class="card-title">
        Promotions <span class="muted">to production, decided by a second person holding the production grant</span>
      </h2>
      <DataTable
        wrap={false}
        label="Pending promotions"
        rows={pending}
        rowKey={(p) => p.id}
        rowProps={(p) => ({ 'data-promotion': p.id })}
        empty={<p class="muted">No pending promotion requests.</p>}
        columns={[
          { header: 'Alias', rowHeader: true, cell: (p) => <span class="chip tag">{p.alias}</span> },
          { header: 'Version', class: 'num', cell: (p) => p.version.version },
          { header: 'Asked by', cell: (p) => p.requestedBy.name },
          { header: 'When', cell: (p) => <Time iso={p.createdAt} /> },
          { header: 'Why', cell: (p) => p.reason },
          {
            header: 'Decision',
            hideHeader: true,
            cell: (p) => (
              <span class="chips">
                <PermittedButton permission={p.viewerCan.decide} class="button primary small" disabled={state.fetching} onClick={() => doDecide(p, true)}>
                  Approve
                </PermittedButton>
                {p.viewerCan.decide.allowed && (
                  <button type="button" class="button subtle small" disabled={state.fetching} onClick={() => doDecide(p, false)}>
                    Reject
                  </button>
                )}
              </span>
            ),
          },
        ]}
      />
      <FormError message={error} />
      {decided.length > 0 && (
        <>
          <h3>Decided</h3>
          <DataTable
            wrap={false}
            label="Decided promotions"
            rows={decided}
            rowKey={(p) => p.id}
            rowProps={(p) => ({ 'data-promotion': p.id, 'data-state': p.state })}
            columns={[
              { header: 'Alias', cell: (p) => <span class="chip tag">{p.alias}</span> },
              { header: 'Version', class: 'num', cell: (p) => p.version.version },
              { header: 'State', cell: (p) => <span class={`chip ${p.state === 'APPROVED' ? 'ok' : 'warn'}`}>{p.state.toLowerCase()}</span> },
              { header: 'Asked by', cell: (p) => p.requestedBy.name },
              { header: 'Decided by', cell: (p) => p.decidedBy?.name ?? '—' },
              { header: 'When', cell: (p) => <Time iso={p.decidedAt} /> },
              { header: 'Why', cell: (p) => p.decisionReason ?? p.reason },
            ]}
          />
        </>
      )}
    </div>
  );
}
