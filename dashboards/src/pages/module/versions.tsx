// A module's versions, newest open: reference, entrypoint, digest, source commit, test result, parameter schema and
// the latest runs that used it; and the difference between any two versions' manifests and artifacts.
import { useState } from 'preact/hooks';
import { DiffView } from '../../components/diff-view';
import { ParameterTable } from '../../components/param-form';
import { StatusBadge } from '../../components/status';
import { stableJson } from '../../lib/diff';
import { formatBytes, formatDateTime, Time } from '../../lib/format';
import { schemaProperties } from '../../lib/run-form';
import { Link } from '../../router';
import type { ModuleData } from './documents';

type Version = ModuleData['versions'][number];

/** What a version is, as text to compare: its manifest, and its artifact's digest, size and source. */
const describe = (v: Version | undefined) =>
  v ? stableJson({ manifest: v.manifest, artifact: { digest: v.digest, sizeBytes: v.sizeBytes, source: v.source } }) : '';

export function CompareVersionsCard({ module }: { module: ModuleData }) {
  const versions = module.versions;
  const [to, setTo] = useState(versions[0]?.version ?? '');
  const [from, setFrom] = useState(versions[1]?.version ?? versions[0]?.version ?? '');
  if (versions.length < 2) return null;
  const choose = (label: string, value: string, set: (v: string) => void) => (
    <label>
      {label}
      <select value={value} onChange={(e) => set(e.currentTarget.value)}>
        {versions.map((v) => (
          <option key={v.id} value={v.version}>
            {v.version}
          </option>
        ))}
      </select>
    </label>
  );
  return (
    <div class="card">
      <h2 class="card-title">Compare versions</h2>
      <div class="compare">
        {choose('From', from, setFrom)}
        {choose('To', to, setTo)}
      </div>
      <DiffView
        before={describe(versions.find((v) => v.version === from))}
        after={describe(versions.find((v) => v.version === to))}
        label={`Changes from version ${from} to ${to}`}
      />
    </div>
  );
}

export function VersionsCard({ module }: { module: ModuleData }) {
  const tagsOf = (versionId: string) => module.tags.filter((t) => t.version.id === versionId).map((t) => t.tag);
  return (
    <div class="card">
      <h2 class="card-title">Versions</h2>
      {module.versions.map((v) => {
        const properties = schemaProperties(v.parameterSchema);
        const source = (v.source ?? {}) as { repository?: string; commit?: string; branch?: string; dirty?: boolean };
        return (
          <details key={v.id} id={`version-${v.version}`} class="version" open={v === module.versions[0]}>
            <summary>
              <strong>{v.version}</strong>{' '}
              {tagsOf(v.id).map((t) => (
                <span class="chip tag" key={t}>
                  {t}
                </span>
              ))}{' '}
              {v.deprecated && (
                <span class="chip warn" title={v.deprecationReason ?? undefined}>
                  deprecated
                </span>
              )}{' '}
              {v.testResult && <span class={`chip ${v.testResult.passed ? 'ok' : 'warn'}`}>test {v.testResult.passed ? 'passed' : 'failed'}</span>}{' '}
              <span class="muted">
                {formatDateTime(v.createdAt)} · {v.runtime} · {formatBytes(v.sizeBytes)}
                {v.publishedBy ? ` · by ${v.publishedBy.name}` : ''} · {v.usage.runs} run{v.usage.runs === 1 ? '' : 's'}
              </span>
            </summary>
            <dl class="summary">
              <div>
                <dt>Reference</dt>
                <dd>
                  <code>{v.ref}</code>
                </dd>
              </div>
              <div>
                <dt>Entrypoint</dt>
                <dd>
                  <code>{v.entrypoint}</code>
                </dd>
              </div>
              <div class="wide">
                <dt>Digest</dt>
                <dd>
                  <code class="id">{v.digest}</code>
                </dd>
              </div>
              {source.repository && (
                <div class="wide">
                  <dt>Source</dt>
                  <dd>
                    {source.repository}
                    {source.branch ? ` (${source.branch})` : ''} {source.commit && <code>{source.commit.slice(0, 12)}</code>}
                    {source.dirty ? ' · uncommitted changes' : ''}
                  </dd>
                </div>
              )}
            </dl>
            <h3>Latest runs using it</h3>
            {v.runs.length === 0 ? (
              <p class="muted">No run has used this version.</p>
            ) : (
              <ul class="plain" aria-label={`Runs using version ${v.version}`}>
                {v.runs.map((r) => (
                  <li key={r.id}>
                    <Link href={`/runs/${r.id}`}>
                      {r.workflow?.name ?? 'external'} · run {r.id.slice(0, 8)}
                    </Link>{' '}
                    <StatusBadge status={r.status} /> <Time iso={r.createdAt} />
                  </li>
                ))}
              </ul>
            )}
            <h3>Parameters</h3>
            <ParameterTable
              properties={properties}
              nameHeader="Name"
              last={{ header: 'Description', cell: (p) => p.schema.description ?? '' }}
              empty={<p class="muted">No parameter schema.</p>}
            />
          </details>
        );
      })}
    </div>
  );
}
