// A workflow's spec and its version history: every version, the spec of one, and the difference between any two
// (the previous and the latest at first). A caller without the domain's grant sees that the specs are withheld.
import { useState } from 'preact/hooks';
import { DiffView } from '../components/diff-view';
import { DataTable } from '../components/table';
import { stableJson } from '../lib/diff';
import { count, Time } from '../lib/format';

export interface VersionWithSpec {
  id: string;
  version: number;
  createdAt: string;
  spec: unknown;
}

export function SpecHistoryCard({ versions, withheld }: { versions: readonly VersionWithSpec[]; withheld: string | null }) {
  const newestFirst = [...versions].sort((a, b) => b.version - a.version);
  const [to, setTo] = useState(newestFirst[0]?.version ?? 1);
  const [from, setFrom] = useState(newestFirst[1]?.version ?? newestFirst[0]?.version ?? 1);
  const specOf = (n: number) => newestFirst.find((v) => v.version === n)?.spec;
  const choose = (label: string, value: number, set: (n: number) => void) => (
    <label>
      {label}
      <select value={value} onChange={(e) => set(Number(e.currentTarget.value))}>
        {newestFirst.map((v) => (
          <option key={v.version} value={v.version}>
            v{v.version}
          </option>
        ))}
      </select>
    </label>
  );
  return (
    <div class="card" id="versions">
      <h2 class="card-title">
        Spec and versions <span class="muted">{count(newestFirst.length, 'version')}</span>
      </h2>
      <DataTable
        label="Workflow versions"
        wrap={false}
        rows={newestFirst}
        rowKey={(v) => v.id}
        rowProps={(v) => ({ 'data-version': v.version })}
        columns={[
          { header: 'Version', rowHeader: true, cell: (v) => `v${v.version}` },
          { header: 'Created', cell: (v) => <Time iso={v.createdAt} /> },
          {
            header: 'Compare',
            hideHeader: true,
            cell: (v) =>
              v.version > 1 ? (
                <button
                  type="button"
                  class="link-button"
                  onClick={() => {
                    setFrom(v.version - 1);
                    setTo(v.version);
                  }}
                >
                  changes from v{v.version - 1}
                </button>
              ) : (
                <span class="muted">first version</span>
              ),
          },
        ]}
      />
      {withheld ? (
        <p class="muted">{withheld}</p>
      ) : (
        <>
          <h3>Difference</h3>
          <div class="compare">
            {choose('From', from, setFrom)}
            {choose('To', to, setTo)}
          </div>
          <DiffView before={stableJson(specOf(from))} after={stableJson(specOf(to))} label={`Changes from v${from} to v${to}`} />
          <details class="task-spec">
            <summary>The spec of v{to}</summary>
            <pre class="json" data-testid="spec">
              {stableJson(specOf(to))}
            </pre>
          </details>
        </>
      )}
    </div>
  );
}
