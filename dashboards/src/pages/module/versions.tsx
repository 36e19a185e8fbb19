// A module's versions, newest open: reference, entrypoint, digest, source commit, test result and parameter schema.
import { ParameterTable } from '../../components/param-form';
import { formatBytes, formatDateTime } from '../../lib/format';
import { schemaProperties } from '../../lib/run-form';
import type { ModuleData } from './documents';

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
