// The modules catalog: every module with its tags, owner and usage, filtered by namespace; each links to its
// page (pages/module/).

import { refetch } from '../api/client';
import { SelectField } from '../components/select-field';
import { EmptyState, QueryState } from '../components/states';
import { DataTable } from '../components/table';
import { graphql } from '../graphql';
import { Time } from '../lib/format';
import { useQuery } from '../lib/query';
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

const moduleHref = (m: { fullName: string }) => `/modules/${m.fullName}`;

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
          <SelectField
            label="Namespace"
            value={namespace}
            any="All namespaces"
            options={namespaces}
            onChange={(value) => navigate(withQuery({ namespace: value }))}
          />
        </form>
      )}
      <QueryState
        data={shown}
        error={result.error}
        errorTitle="Modules could not be loaded"
        retry={refetch(reexecute)}
        loading="Loading modules…"
        empty={
          <EmptyState title="No modules published yet">
            <p>
              Publish one from its folder (the one holding its <code>atelier.module.yaml</code>) with <code>npx atelier module push DIR</code>; the repository's
              example: <code>npx atelier module push examples/iris/prepare</code>, then <code>train</code> and <code>evaluate</code>.
            </p>
          </EmptyState>
        }
      >
        {(shown) => (
          <DataTable
            rows={shown}
            rowKey={(m) => m.id}
            rowHref={moduleHref}
            columns={[
              {
                header: 'Module',
                cell: (m) => (
                  <>
                    <Link href={moduleHref(m)}>{m.fullName}</Link>
                    {m.description && <div class="row-message">{m.description}</div>}
                  </>
                ),
              },
              { header: 'Tags', cell: (m) => <TagChips tags={m.tags} /> },
              { header: 'Latest version', class: 'num', cell: (m) => m.versions[0]?.version ?? '—' },
              { header: 'Runtime', cell: (m) => m.versions[0]?.runtime ?? '—' },
              { header: 'Team', cell: (m) => m.owner?.name ?? <span class="muted">none</span> },
              { header: 'Runs', class: 'num', cell: (m) => m.usage.runs },
              { header: 'Published', cell: (m) => <Time iso={m.versions[0]?.createdAt ?? m.createdAt} /> },
            ]}
          />
        )}
      </QueryState>
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
