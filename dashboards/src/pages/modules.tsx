// The modules catalog: every module with its tags, and a module's versions with their manifests and
// parameter schemas. Tag history, promote and roll back appear once the API has them.
import { useQuery } from '@urql/preact';
import { useFeatures } from '../api/features';
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
      tags { tag updatedAt version { id version } }
      versions(limit: 1) { id version createdAt runtime }
    }
  }
`);

const MODULE = graphql(`
  query ModulePage($name: String!) {
    module(name: $name) {
      id
      fullName
      description
      createdAt
      tags { tag updatedAt version { id version } }
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
  const features = useFeatures();
  const [result, reexecute] = useQuery({ query: MODULE, variables: { name: fullName } });
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
  return (
    <section aria-labelledby="module-title">
      <nav class="breadcrumbs" aria-label="Breadcrumbs">
        <Link href="/modules">Modules</Link> <span aria-hidden="true">/</span> <span>{module.fullName}</span>
      </nav>
      <div class="page-header">
        <h1 id="module-title">{module.fullName}</h1>
      </div>
      {module.description && <p class="lead">{module.description}</p>}

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
                </tr>
              ))}
            </tbody>
          </table>
        )}
        {/* PLACEHOLDER(tag history): promote, roll back and the history of each tag appear when ModuleTag.history exists. */}
        {!features.tagHistory && <p class="hint">Tag history, promote and roll back will appear here once the API offers them.</p>}
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
                <span class="muted">
                  {formatDateTime(v.createdAt)} · {v.runtime} · {formatBytes(v.sizeBytes)}
                  {v.publishedBy ? ` · by ${v.publishedBy.name}` : ''}
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
