// A model's versions: a table (number, digest, flavor, who and when, label, deprecation) whose rows select the
// version shown in the lineage graph and open the promotion request form; and every version's metrics side by side,
// the best value of each metric marked.
import { useMutation } from '@urql/preact';
import { useState } from 'preact/hooks';
import { errorMessage } from '../../api/client';
import { LabelChips } from '../../components/label-chips';
import { DeniedReason, PermittedButton } from '../../components/permitted';
import { FormError } from '../../components/states';
import { DataTable } from '../../components/table';
import { Time } from '../../lib/format';
import { navigate, withQuery } from '../../router';
import { type ModelData, REQUEST_PROMOTION, type VersionData } from './documents';

const shortDigest = (digest: string) => digest.replace(/^sha256:/, '').slice(0, 12);

export function VersionsCard({ model, selected, onChange }: { model: ModelData; selected: number | null; onChange(): void }) {
  const [requesting, setRequesting] = useState<number | null>(null);
  const aliasesOf = (v: VersionData) => model.aliases.filter((a) => a.version.id === v.id);
  return (
    <div class="card">
      <h2 class="card-title">Versions</h2>
      <DataTable
        wrap={false}
        label="Versions"
        rows={model.versions}
        rowKey={(v) => v.id}
        rowProps={(v) => ({ 'data-version': v.version, class: v.version === selected ? 'selected' : undefined })}
        empty={<p class="muted">No version registered yet.</p>}
        columns={[
          { header: 'Version', rowHeader: true, class: 'num', cell: (v) => v.version },
          {
            header: 'Aliases',
            cell: (v) => (
              <span class="chips">
                {aliasesOf(v).map((a) => (
                  <span class="chip tag" key={a.alias}>
                    {a.alias}
                  </span>
                ))}
              </span>
            ),
          },
          { header: 'Digest', cell: (v) => <code title={v.digest}>{shortDigest(v.digest)}</code> },
          { header: 'Flavor', cell: (v) => v.flavor ?? <span class="muted">—</span> },
          { header: 'Created', cell: (v) => <Time iso={v.createdAt} /> },
          { header: 'By', cell: (v) => v.createdBy?.name ?? '—' },
          { header: 'Label', cell: (v) => <LabelChips label={v.label} /> },
          {
            header: 'Deprecated',
            cell: (v) =>
              v.deprecated ? (
                <span class="chip warn" title={v.deprecationReason ?? undefined}>
                  deprecated{v.deprecationReason ? `: ${v.deprecationReason}` : ''}
                </span>
              ) : (
                ''
              ),
          },
          {
            header: 'Actions',
            hideHeader: true,
            cell: (v) => (
              <span class="chips">
                <button
                  type="button"
                  class="button subtle small"
                  aria-pressed={v.version === selected}
                  onClick={() => navigate(withQuery({ version: String(v.version) }), { replace: true })}
                >
                  Lineage
                </button>
                <PermittedButton
                  permission={model.viewerCan.requestPromotion}
                  class="button subtle small"
                  aria-label={`Request promotion of version ${v.version}`}
                  onClick={() => setRequesting(requesting === v.version ? null : v.version)}
                >
                  Request promotion
                </PermittedButton>
              </span>
            ),
          },
        ]}
      />
      {requesting !== null && (
        <RequestPromotionForm
          model={model}
          version={requesting}
          onDone={() => {
            setRequesting(null);
            onChange();
          }}
        />
      )}
    </div>
  );
}

function RequestPromotionForm({ model, version, onDone }: { model: ModelData; version: number; onDone(): void }) {
  const production = model.aliases.filter((a) => a.domain === 'production').map((a) => a.alias);
  const [alias, setAlias] = useState(production[0] ?? 'champion');
  const [reason, setReason] = useState('');
  const [error, setError] = useState<string | null>(null);
  const [state, request] = useMutation(REQUEST_PROMOTION);
  const submit = async (event: Event) => {
    event.preventDefault();
    setError(null);
    const r = await request({ model: model.fullName, version: String(version), alias: alias.trim(), reason: reason.trim() });
    if (r.error) setError(errorMessage(r.error));
    else onDone();
  };
  return (
    <form class="inline-form" aria-label={`Request promotion of version ${version}`} onSubmit={submit}>
      <strong>Promote version {version} to production</strong>
      <label>
        Alias
        <input value={alias} list="production-aliases" required onInput={(e) => setAlias(e.currentTarget.value)} />
        <datalist id="production-aliases">
          {production.map((a) => (
            <option key={a} value={a} />
          ))}
        </datalist>
      </label>
      <label>
        Reason
        <input value={reason} required placeholder="why this version" onInput={(e) => setReason(e.currentTarget.value)} />
      </label>
      <button type="submit" class="button primary" disabled={state.fetching || !model.viewerCan.requestPromotion.allowed}>
        {state.fetching ? 'Requesting…' : 'Request'}
      </button>
      <DeniedReason permission={model.viewerCan.requestPromotion} />
      <FormError message={error} />
    </form>
  );
}

const lowerIsBetter = (metric: string, model: ModelData) => {
  const requirement = model.requirements.find((r) => r.metric === metric);
  if (requirement) return requirement.max != null && requirement.min == null;
  return /loss|error|err$|rmse|mse|mae|latency|perplexity/i.test(metric);
};

/** Every version's metrics in one table, a column per version; the best value of each row marked. */
export function MetricsCard({ model }: { model: ModelData }) {
  const versions = model.versions;
  const readable = versions.filter((v) => v.metrics !== null);
  const names = [...new Set(readable.flatMap((v) => v.metrics!.map((m) => m.name)))].sort();
  const metricOf = (v: VersionData, name: string) => {
    const value = v.metrics?.find((m) => m.name === name)?.value;
    return typeof value === 'number' ? value : null;
  };
  return (
    <div class="card">
      <h2 class="card-title">
        Metrics <span class="muted">each version’s run, side by side</span>
      </h2>
      {readable.length < versions.length && (
        <p class="muted">Some versions’ metrics are run data your teams may not read (their run’s domain is not granted to you).</p>
      )}
      {names.length === 0 ? (
        <p class="muted">No metrics logged by these versions’ runs.</p>
      ) : (
        <div class="table-scroll">
          <table class="metric-compare" aria-label="Metrics by version">
            <thead>
              <tr>
                <th scope="col">Metric</th>
                {versions.map((v) => (
                  <th scope="col" class="num" key={v.id}>
                    v{v.version}
                  </th>
                ))}
              </tr>
            </thead>
            <tbody>
              {names.map((name) => {
                const values = versions.map((v) => metricOf(v, name));
                const present = values.filter((x): x is number => x !== null);
                const lower = lowerIsBetter(name, model);
                const best = present.length > 1 ? (lower ? Math.min(...present) : Math.max(...present)) : null;
                return (
                  <tr key={name} data-metric={name}>
                    <th scope="row">{name}</th>
                    {versions.map((v, i) => {
                      const value = values[i];
                      const isBest = value !== null && value === best;
                      return (
                        <td
                          key={v.id}
                          class={`num${isBest ? ' best' : ''}`}
                          data-version={v.version}
                          data-best={isBest ? 'true' : undefined}
                          title={isBest ? `best (${lower ? 'lowest' : 'highest'})` : undefined}
                        >
                          {value === null ? <span class="muted">—</span> : value}
                        </td>
                      );
                    })}
                  </tr>
                );
              })}
            </tbody>
          </table>
        </div>
      )}
    </div>
  );
}
