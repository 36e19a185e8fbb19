// The workflows list: every workflow with its domain, latest version and task count.
import { useQuery } from '@urql/preact';
import { graphql } from '../graphql';
import { EmptyState, ErrorState, Loading } from '../components/states';
import { Time } from '../lib/format';
import { asSpec } from '../lib/run-form';
import { useTitle } from '../lib/title';
import { Link, navigate } from '../router';

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
      {result.error && !workflows ? (
        <ErrorState title="Workflows could not be loaded" error={result.error} retry={() => reexecute({ requestPolicy: 'network-only' })} />
      ) : !workflows ? (
        <Loading label="Loading workflows…" />
      ) : workflows.length === 0 ? (
        <EmptyState title="No workflows yet">
          <p>
            Create one from a YAML spec with <code>npx atelier workflow create spec.yaml</code> (or the <code>createWorkflow</code> mutation).
          </p>
        </EmptyState>
      ) : (
        <div class="table-wrap">
          <table>
            <thead>
              <tr>
                <th scope="col">Workflow</th>
                <th scope="col">Domain</th>
                <th scope="col">Version</th>
                <th scope="col">Tasks</th>
                <th scope="col">Parameters</th>
                <th scope="col">Updated</th>
                <th scope="col">
                  <span class="visually-hidden">Actions</span>
                </th>
              </tr>
            </thead>
            <tbody>
              {workflows.map((w) => {
                const spec = asSpec(w.latestVersion.spec);
                const href = `/workflows/${encodeURIComponent(w.name)}`;
                return (
                  <tr key={w.id} class="clickable" onClick={(e) => !(e.target as HTMLElement).closest('a') && navigate(href)}>
                    <td>
                      <Link href={href}>{w.name}</Link>
                      {w.description && <div class="row-message">{w.description}</div>}
                    </td>
                    <td>
                      <span class={`chip domain-${w.domain}`}>{w.domain}</span>
                    </td>
                    <td class="num">v{w.latestVersion.version}</td>
                    <td class="num">{spec.tasks?.length ?? 0}</td>
                    <td>{Object.keys(spec.parameters ?? {}).join(', ') || <span class="muted">none</span>}</td>
                    <td>
                      <Time iso={w.latestVersion.createdAt} />
                    </td>
                    <td>
                      <Link class="button small" href={`${href}#start`}>
                        Start run…
                      </Link>
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
