// The modules catalog: every module with its tags, owner and usage; a module's versions with their manifests,
// parameter schemas and test results; and its tags, promoted and rolled back here, with their history.
import { useMutation, useQuery } from '@urql/preact';
import { useState } from 'preact/hooks';
import { errorMessage } from '../api/client';
import { graphql } from '../graphql';
import { EmptyState, ErrorState, Loading } from '../components/states';
import { formatBytes, formatDateTime, Time } from '../lib/format';
import { describeSchema, schemaProperties } from '../lib/run-form';
import { useTitle } from '../lib/title';
import { Link, navigate, useLocation, withQuery } from '../router';

const MODULES = graphql(`
  query Modules {
    modules {
      id
      fullName
      namespace
      name
      description
      createdAt
      owner { name }
      usage { runs }
      tags { tag updatedAt version { id version } }
      versions(limit: 1) { id version createdAt runtime }
    }
  }
`);

const SET_TAG = graphql(`
  mutation PromoteTag($module: String!, $tag: String!, $version: String!, $reason: String, $force: Boolean) {
    setModuleTag(module: $module, tag: $tag, version: $version, reason: $reason, force: $force) { tag version { version } }
  }
`);

const ROLLBACK_TAG = graphql(`
  mutation RollbackTag($module: String!, $tag: String!) {
    rollbackModuleTag(module: $module, tag: $tag) { tag version { version } }
  }
`);

const MODULE = graphql(`
  query ModulePage($name: String!) {
    module(name: $name) {
      id
      fullName
      description
      createdAt
      owner { name }
      usage { runs lastUsedAt }
      tags { tag updatedAt version { id version } }
      tagHistory(limit: 30) { tag action reason at from { version } to { version } movedBy { name } }
      versions(limit: 50) {
        id
        version
        ref
        digest
        createdAt
        sizeBytes
        runtime
        entrypoint
        parameterSchema
        source
        publishedBy { name }
        deprecated
        deprecationReason
        testResult { passed exitCode durationMs command }
        usage { runs }
      }
    }
  }
`);

export function ModulesPage() {
  useTitle('Modules');
  const { query } = useLocation();
  const namespace = query.get('namespace') ?? '';
  const [result, reexecute] = useQuery({ query: MODULES });
  const modules = result.data?.modules;
  const namespaces = [...new Set(modules?.map((m) => m.namespace))].sort();
  const shown = modules?.filter((m) => !namespace || m.namespace === namespace);
  return (
    <section aria-labelledby="modules-title">
      <div class="page-header">
        <h1 id="modules-title">Modules</h1>
      </div>
      {namespaces.length > 1 && (
        <form class="filters" aria-label="Filter modules" onSubmit={(e) => e.preventDefault()}>
          <label>
            Namespace
            <select value={namespace} onChange={(e) => navigate(withQuery({ namespace: e.currentTarget.value }))}>
              <option value="">All namespaces</option>
              {namespaces.map((n) => (
                <option key={n} value={n}>
                  {n}
                </option>
              ))}
            </select>
          </label>
        </form>
      )}
      {result.error && !modules ? (
        <ErrorState title="Modules could not be loaded" error={result.error} retry={() => reexecute({ requestPolicy: 'network-only' })} />
      ) : !shown ? (
        <Loading label="Loading modules…" />
      ) : shown.length === 0 ? (
        <EmptyState title="No modules published yet">
          <p>
            Publish one from its folder with <code>npx atelier module push</code>.
          </p>
        </EmptyState>
      ) : (
        <div class="table-wrap">
          <table>
            <thead>
              <tr>
                <th scope="col">Module</th>
                <th scope="col">Tags</th>
                <th scope="col">Latest version</th>
                <th scope="col">Runtime</th>
                <th scope="col">Team</th>
                <th scope="col">Runs</th>
                <th scope="col">Published</th>
              </tr>
            </thead>
            <tbody>
              {shown.map((m) => {
                const href = `/modules/${m.fullName}`;
                const latest = m.versions[0];
                return (
                  <tr key={m.id} class="clickable" onClick={(e) => !(e.target as HTMLElement).closest('a') && navigate(href)}>
                    <td>
                      <Link href={href}>{m.fullName}</Link>
                      {m.description && <div class="row-message">{m.description}</div>}
                    </td>
                    <td>
                      <TagChips tags={m.tags} />
                    </td>
                    <td class="num">{latest?.version ?? '—'}</td>
                    <td>{latest?.runtime ?? '—'}</td>
                    <td>{m.owner?.name ?? <span class="muted">none</span>}</td>
                    <td class="num">{m.usage.runs}</td>
                    <td>
                      <Time iso={latest?.createdAt ?? m.createdAt} />
                    </td>
                  </tr>
                );
              })}
            </tbody>
          </table>
        </div>
      )}
    </section>
  );
}

function TagChips({ tags }: { tags: readonly { tag: string; version: { version: string } }[] }) {
  if (!tags.length) return <span class="muted">none</span>;
  return (
    <span class="chips">
      {tags.map((t) => (
        <span class="chip tag" key={t.tag}>
          {t.tag} → {t.version.version}
        </span>
      ))}
    </span>
  );
}

export function ModulePage({ fullName }: { fullName: string }) {
  useTitle(fullName);
  const [result, reexecute] = useQuery({ query: MODULE, variables: { name: fullName } });
  const [rollbackState, rollback] = useMutation(ROLLBACK_TAG);
  const [tagError, setTagError] = useState<string | null>(null);
  const module = result.data?.module;
  if (result.error && !module) return <ErrorState title="This module could not be loaded" error={result.error} retry={() => reexecute({ requestPolicy: 'network-only' })} />;
  if (!result.data) return <Loading label="Loading the module…" />;
  if (!module)
    return (
      <EmptyState title={`No module named “${fullName}”`}>
        <p>
          <Link href="/modules">See all modules</Link>.
        </p>
      </EmptyState>
    );
  const tagsOf = (versionId: string) => module.tags.filter((t) => t.version.id === versionId).map((t) => t.tag);
  const refresh = () => reexecute({ requestPolicy: 'network-only' });
  const doRollback = async (tag: string) => {
    setTagError(null);
    const r = await rollback({ module: module.fullName, tag });
    if (r.error) setTagError(errorMessage(r.error));
    else refresh();
  };
  return (
    <section aria-labelledby="module-title">
      <nav class="breadcrumbs" aria-label="Breadcrumbs">
        <Link href="/modules">Modules</Link> <span aria-hidden="true">/</span> <span>{module.fullName}</span>
      </nav>
      <div class="page-header">
        <h1 id="module-title">{module.fullName}</h1>
      </div>
      {module.description && <p class="lead">{module.description}</p>}
      <p class="muted">
        Team: {module.owner?.name ?? 'none (only admins publish)'} · used by {module.usage.runs} run{module.usage.runs === 1 ? '' : 's'}
        {module.usage.lastUsedAt && (
          <>
            , last <Time iso={module.usage.lastUsedAt} />
          </>
        )}
      </p>

      <div class="card">
        <h2 class="card-title">Tags</h2>
        {module.tags.length === 0 ? (
          <p class="muted">No tags.</p>
        ) : (
          <table>
            <thead>
              <tr>
                <th scope="col">Tag</th>
                <th scope="col">Version</th>
                <th scope="col">Moved</th>
                <th scope="col">
                  <span class="visually-hidden">Actions</span>
                </th>
              </tr>
            </thead>
            <tbody>
              {module.tags.map((t) => (
                <tr key={t.tag}>
                  <td>
                    <span class="chip tag">{t.tag}</span>
                  </td>
                  <td>
                    <a href={`#version-${t.version.version}`}>{t.version.version}</a>
                  </td>
                  <td>
                    <Time iso={t.updatedAt} />
                  </td>
                  <td>
                    <button type="button" class="button subtle" onClick={() => doRollback(t.tag)} disabled={rollbackState.fetching} aria-label={`Roll back ${t.tag}`}>
                      Roll back
                    </button>
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        )}
        {tagError && (
          <p class="form-error" role="alert">
            {tagError}
          </p>
        )}
        <PromoteForm module={module.fullName} tags={module.tags.map((t) => t.tag)} versions={module.versions} onDone={refresh} />
      </div>

      <div class="card">
        <h2 class="card-title">Tag history</h2>
        {module.tagHistory.length === 0 ? (
          <p class="muted">No tag has moved yet.</p>
        ) : (
          <table aria-label="Tag history">
            <thead>
              <tr>
                <th scope="col">When</th>
                <th scope="col">Tag</th>
                <th scope="col">Move</th>
                <th scope="col">By</th>
                <th scope="col">Why</th>
              </tr>
            </thead>
            <tbody>
              {module.tagHistory.map((e, i) => (
                <tr key={i}>
                  <td>
                    <Time iso={e.at} />
                  </td>
                  <td>
                    <span class="chip tag">{e.tag}</span>
                  </td>
                  <td>
                    {e.from?.version ?? '∅'} → {e.to.version}
                    {e.action === 'rollback' && <span class="chip"> rollback</span>}
                  </td>
                  <td>{e.movedBy?.name ?? '—'}</td>
                  <td>{e.reason ?? ''}</td>
                </tr>
              ))}
            </tbody>
          </table>
        )}
      </div>

      <div class="card">
        <h2 class="card-title">Versions</h2>
        {module.versions.map((v) => {
          const properties = schemaProperties(v.parameterSchema);
          const source = (v.source ?? {}) as { repository?: string; commit?: string; branch?: string; dirty?: boolean };
          return (
            <details key={v.id} id={`version-${v.version}`} class="version" open={v === module.versions[0]}>
              <summary>
                <strong>{v.version}</strong> {tagsOf(v.id).map((t) => <span class="chip tag" key={t}>{t}</span>)}{' '}
                {v.deprecated && <span class="chip warn" title={v.deprecationReason ?? undefined}>deprecated</span>}{' '}
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
              {properties.length === 0 ? (
                <p class="muted">No parameter schema.</p>
              ) : (
                <table>
                  <thead>
                    <tr>
                      <th scope="col">Name</th>
                      <th scope="col">Accepts</th>
                      <th scope="col">Description</th>
                    </tr>
                  </thead>
                  <tbody>
                    {properties.map((p) => (
                      <tr key={p.name}>
                        <td>
                          <code>{p.name}</code>
                          {p.required && <span class="muted"> (required)</span>}
                        </td>
                        <td>{describeSchema(p.schema)}</td>
                        <td>{p.schema.description ?? ''}</td>
                      </tr>
                    ))}
                  </tbody>
                </table>
              )}
            </details>
          );
        })}
      </div>
    </section>
  );
}

interface VersionChoice {
  version: string;
  deprecated: boolean;
}

/** Points a tag (an existing one or a new name) at a version; a deprecated version needs an explicit force. */
function PromoteForm({ module, tags, versions, onDone }: { module: string; tags: string[]; versions: readonly VersionChoice[]; onDone(): void }) {
  const [tag, setTag] = useState(tags.includes('latest') ? 'latest' : (tags[0] ?? 'latest'));
  const [version, setVersion] = useState(versions[0]?.version ?? '');
  const [reason, setReason] = useState('');
  const [force, setForce] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const [state, promote] = useMutation(SET_TAG);
  const chosen = versions.find((v) => v.version === version);
  const submit = async (event: Event) => {
    event.preventDefault();
    setError(null);
    const r = await promote({ module, tag: tag.trim(), version, reason: reason.trim() || null, force: chosen?.deprecated ? force : null });
    if (r.error) setError(errorMessage(r.error));
    else {
      setReason('');
      onDone();
    }
  };
  return (
    <form class="inline-form" aria-label="Promote a version" onSubmit={submit}>
      <label>
        Tag
        <input value={tag} list="module-tags" required onInput={(e) => setTag(e.currentTarget.value)} />
        <datalist id="module-tags">
          {tags.map((t) => (
            <option key={t} value={t} />
          ))}
        </datalist>
      </label>
      <label>
        Version
        <select value={version} onChange={(e) => setVersion(e.currentTarget.value)}>
          {versions.map((v) => (
            <option key={v.version} value={v.version}>
              {v.version}
              {v.deprecated ? ' (deprecated)' : ''}
            </option>
          ))}
        </select>
      </label>
      <label>
        Reason
        <input value={reason} placeholder="optional" onInput={(e) => setReason(e.currentTarget.value)} />
      </label>
      {chosen?.deprecated && (
        <label class="check">
          <input type="checkbox" checked={force} onChange={(e) => setForce(e.currentTarget.checked)} /> Use the deprecated version anyway
        </label>
      )}
      <button type="submit" class="button primary" disabled={state.fetching || !version}>
        {state.fetching ? 'Moving…' : 'Move tag'}
      </button>
      {error && (
        <p class="form-error" role="alert">
          {error}
        </p>
      )}
    </form>
  );
}
