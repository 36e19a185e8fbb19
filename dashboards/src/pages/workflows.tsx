// The workflows list: every workflow with its domain, latest version and task count.

import { refetch } from '../api/client';
import { EmptyState, QueryState } from '../components/states';
import { DataTable } from '../components/table';
import { graphql } from '../graphql';
import { Time } from '../lib/format';
import { useQuery } from '../lib/query';
import { asSpec } from '../lib/run-form';
import { useTitle } from '../lib/title';
import { Link } from '../router';

const WORKFLOWS = graphql(`
  query Workflows {
    workflows {
      id
      name
      description
      domain
      createdAt
      createdBy { name }
      latestVersion { id version createdAt spec }
      viewerCan { start { allowed reason } }
    }
  }
`);

export function WorkflowsPage() {
  useTitle('Workflows');
  const [result, reexecute] = useQuery({ query: WORKFLOWS });
  const workflows = result.data?.workflows;
  return (
    <section aria-labelledby="workflows-title">
      <div class="page-header">
        <h1 id="workflows-title">Workflows</h1>
      </div>
      <QueryState
        data={workflows}
        error={result.error}
        errorTitle="Workflows could not be loaded"
        retry={refetch(reexecute)}
        loading="Loading workflows…"
        empty={
          <EmptyState title="No workflows yet">
            <p>
              Create one from a YAML spec with <code>npx atelier workflow create spec.yaml</code> (or the <code>createWorkflow</code> mutation); the
              repository's example, once its modules are pushed: <code>npx atelier workflow create examples/iris/workflow.yaml</code>.
            </p>
          </EmptyState>
        }
      >
        {(workflows) => (
          <DataTable
            rows={workflows.map((w) => ({
              ...w,
              // null: the API withheld the spec (data of a domain none of the viewer's teams is granted)
              spec: w.latestVersion.spec === null ? null : asSpec(w.latestVersion.spec),
              href: `/workflows/${encodeURIComponent(w.name)}`,
            }))}
            rowKey={(w) => w.id}
            rowHref={(w) => w.href}
            columns={[
              {
                header: 'Workflow',
                cell: (w) => (
                  <>
                    <Link href={w.href}>{w.name}</Link>
                    {w.description && <div class="row-message">{w.description}</div>}
                  </>
                ),
              },
              { header: 'Domain', cell: (w) => <span class={`chip domain-${w.domain}`}>{w.domain}</span> },
              { header: 'Version', class: 'num', cell: (w) => `v${w.latestVersion.version}` },
              { header: 'Tasks', class: 'num', cell: (w) => (w.spec ? (w.spec.tasks?.length ?? 0) : <span class="muted">withheld</span>) },
              {
                header: 'Parameters',
                cell: (w) =>
                  w.spec ? Object.keys(w.spec.parameters ?? {}).join(', ') || <span class="muted">none</span> : <span class="muted">withheld</span>,
              },
              { header: 'Updated', cell: (w) => <Time iso={w.latestVersion.createdAt} /> },
              {
                header: 'Actions',
                hideHeader: true,
                // offered only to who may start it (the workflow page says why to anyone else)
                cell: (w) =>
                  w.viewerCan.start.allowed ? (
                    <Link class="button small" href={`${w.href}#start`}>
                      Start run…
                    </Link>
                  ) : null,
              },
            ]}
          />
        )}
      </QueryState>
    </section>
  );
}
