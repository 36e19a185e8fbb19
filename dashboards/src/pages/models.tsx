// The models catalog: every registered model matching the search (a name word, `namespace/` or `namespace/name`), with its owning team, its
// aliases and the version each points at, and the label of its newest version; each links to its page (pages/model/).

import { useState } from 'preact/hooks';
import { refetch } from '../api/client';
import { LabelChips } from '../components/label-chips';
import { EmptyState, QueryState } from '../components/states';
import { DataTable } from '../components/table';
import { graphql } from '../graphql';
import { Time } from '../lib/format';
import { useQuery } from '../lib/query';
import { useTitle } from '../lib/title';
import { Link, navigate, useLocation, withQuery } from '../router';

const MODELS = graphql(`
  query Models($namespace: String, $search: String) {
    models(namespace: $namespace, search: $search) {
      id
      fullName
      description
      owner { name }
      aliases { alias domain version { version } }
      versions { id version createdAt label { level categories } }
    }
  }
`);

/** `ns/word` (or `ns/`) searches one namespace; a plain word, names and descriptions everywhere. */
export function parseModelSearch(text: string): { namespace: string | null; search: string | null } {
  const slash = text.indexOf('/');
  if (slash < 0) return { namespace: null, search: text || null };
  return { namespace: text.slice(0, slash).trim() || null, search: text.slice(slash + 1).trim() || null };
}

export const modelHref = (fullName: string) => `/models/${fullName.split('/').map(encodeURIComponent).join('/')}`;

export function ModelsPage() {
  useTitle('Models');
  const { query } = useLocation();
  const search = query.get('q') ?? '';
  const [draft, setDraft] = useState(search);
  const [result, reexecute] = useQuery({ query: MODELS, variables: parseModelSearch(search) });
  const models = result.data?.models;
  return (
    <section aria-labelledby="models-title">
      <div class="page-header">
        <h1 id="models-title">Models</h1>
      </div>
      <form
        class="filters"
        aria-label="Search models"
        onSubmit={(e) => {
          e.preventDefault();
          navigate(withQuery({ q: draft.trim() }));
        }}
      >
        <label>
          Search
          <input type="search" value={draft} placeholder="name, namespace/ or namespace/name" onInput={(e) => setDraft(e.currentTarget.value)} />
        </label>
        <button type="submit" class="button">
          Search
        </button>
      </form>
      <QueryState
        data={models}
        error={result.error}
        errorTitle="Models could not be loaded"
        retry={refetch(reexecute)}
        loading="Loading models…"
        empty={
          <EmptyState title={search ? `No model matches “${search}”` : 'No models registered yet'}>
            <p>
              Register a task output as a version with <code>npx atelier model register NAMESPACE/NAME TASK_ID OUTPUT</code>.
            </p>
          </EmptyState>
        }
      >
        {(models) => (
          <DataTable
            rows={models}
            rowKey={(m) => m.id}
            rowHref={(m) => modelHref(m.fullName)}
            rowProps={(m) => ({ 'data-model': m.fullName })}
            columns={[
              {
                header: 'Model',
                rowHeader: true,
                cell: (m) => (
                  <>
                    <Link href={modelHref(m.fullName)}>{m.fullName}</Link>
                    {m.description && <div class="row-message">{m.description}</div>}
                  </>
                ),
              },
              { header: 'Team', cell: (m) => m.owner?.name ?? <span class="muted">none</span> },
              {
                header: 'Aliases',
                cell: (m) =>
                  m.aliases.length ? (
                    <span class="chips">
                      {m.aliases.map((a) => (
                        <span class={`chip tag${a.domain === 'production' ? ' production' : ''}`} key={a.alias} title={`in ${a.domain}`}>
                          {a.alias} → {a.version.version}
                        </span>
                      ))}
                    </span>
                  ) : (
                    <span class="muted">none</span>
                  ),
              },
              { header: 'Latest version', class: 'num', cell: (m) => m.versions[0]?.version ?? '—' },
              { header: 'Label', cell: (m) => (m.versions[0] ? <LabelChips label={m.versions[0].label} /> : '—') },
              { header: 'Registered', cell: (m) => <Time iso={m.versions[0]?.createdAt} /> },
            ]}
          />
        )}
      </QueryState>
    </section>
  );
}
