// Experiments: each with its workflow (a workflow's own) or who made it, its tags, how many runs it groups (leading to
// those runs), and, for whoever may change it (`viewerCan.change`, the very check updateExperiment runs), rename,
// delete and restore in place (a workflow's own is renamed, never deleted); refused, the buttons are disabled with the
// API's reason. Deleted ones are listed on request, to restore one.
import { useMutation } from '@urql/preact';
import { useState } from 'preact/hooks';
import { errorMessage, refetch } from '../api/client';
import { DeniedReason } from '../components/permitted';
import { EmptyState, FormError, QueryState } from '../components/states';
import { DataTable } from '../components/table';
import { graphql } from '../graphql';
import { Time } from '../lib/format';
import { useQuery } from '../lib/query';
import { useTitle } from '../lib/title';
import { Link } from '../router';

const EXPERIMENTS = graphql(`
  query Experiments($deleted: Boolean, $after: String) {
    experiments(first: 100, after: $after, includeDeleted: $deleted) {
      edges {
        node {
          id
          name
          deletedAt
          runCount
          createdAt
          createdBy { name }
          workflow { name }
          tags { key value }
          viewerCan { change { allowed reason } }
        }
      }
      pageInfo { hasNextPage endCursor }
    }
  }
`);

const UPDATE = graphql(`
  mutation UpdateExperiment($id: ID!, $name: String, $deleted: Boolean) {
    updateExperiment(experiment: $id, name: $name, deleted: $deleted) { id name deletedAt }
  }
`);

/** The runs list searching this experiment's runs (the filter language quotes with ', doubled inside). */
const runsOf = (name: string) => `/runs?q=${encodeURIComponent(`experiment = '${name.replaceAll("'", "''")}'`)}`;

export function ExperimentsPage() {
  useTitle('Experiments');
  const [showDeleted, setShowDeleted] = useState(false);
  const [after, setAfter] = useState<string | null>(null);
  const [result, reexecute] = useQuery({ query: EXPERIMENTS, variables: { deleted: showDeleted, after } });
  const [updating, update] = useMutation(UPDATE);
  const [error, setError] = useState<string | null>(null);
  const [renaming, setRenaming] = useState<{ id: string; name: string } | null>(null);
  const connection = result.data?.experiments;
  const change = async (variables: { id: string; name?: string; deleted?: boolean }) => {
    setError(null);
    const r = await update(variables);
    if (r.error) setError(errorMessage(r.error));
    else {
      setRenaming(null);
      reexecute({ requestPolicy: 'network-only' });
    }
  };
  return (
    <section aria-labelledby="experiments-title">
      <div class="page-header">
        <h1 id="experiments-title">Experiments</h1>
        <label class="check">
          <input
            type="checkbox"
            checked={showDeleted}
            onChange={(e) => {
              setAfter(null);
              setShowDeleted((e.target as HTMLInputElement).checked);
            }}
          />{' '}
          Show deleted
        </label>
      </div>
      <FormError message={error} />
      <QueryState
        data={connection?.edges.map((e) => e.node)}
        error={result.error}
        errorTitle="Experiments could not be loaded"
        retry={refetch(reexecute)}
        loading="Loading experiments…"
        empty={
          <EmptyState title="No experiments yet">
            <p>
              A workflow’s first run makes its own; name one with <code>startRun(experiment: "…")</code> or an MLflow client’s{' '}
              <code>mlflow.set_experiment("…")</code>.
            </p>
          </EmptyState>
        }
      >
        {(experiments) => (
          <>
            <DataTable
              label="Experiments"
              rows={experiments}
              rowKey={(e) => e.id}
              rowProps={(e) => ({ 'data-experiment': e.name, 'data-deleted': e.deletedAt ? 'true' : undefined })}
              columns={[
                {
                  header: 'Experiment',
                  cell: (e) =>
                    renaming?.id === e.id ? (
                      <form
                        class="inline-form rename-form"
                        onSubmit={(event) => {
                          event.preventDefault();
                          void change({ id: e.id, name: renaming.name });
                        }}
                      >
                        <input
                          aria-label={`New name for ${e.name}`}
                          value={renaming.name}
                          onInput={(event) => setRenaming({ id: e.id, name: (event.target as HTMLInputElement).value })}
                        />
                        <button type="submit" class="button" disabled={updating.fetching}>
                          Save
                        </button>
                        <button type="button" class="button" onClick={() => setRenaming(null)}>
                          Cancel
                        </button>
                      </form>
                    ) : (
                      <>
                        <strong>{e.name}</strong>
                        {e.deletedAt && <span class="chip warn"> deleted</span>}
                        {e.tags.length > 0 && (
                          <div class="row-message">
                            {e.tags.map((t) => (
                              <span key={t.key} class="chip tag">
                                {t.key}={t.value}
                              </span>
                            ))}
                          </div>
                        )}
                      </>
                    ),
                },
                {
                  header: 'Workflow',
                  cell: (e) =>
                    e.workflow ? <Link href={`/workflows/${encodeURIComponent(e.workflow.name)}`}>{e.workflow.name}</Link> : <span class="muted">—</span>,
                },
                { header: 'Runs', cell: (e) => <Link href={runsOf(e.name)}>{e.runCount}</Link> },
                {
                  header: 'Created',
                  cell: (e) => (
                    <>
                      <Time iso={e.createdAt} />
                      {e.createdBy && <div class="row-message">by {e.createdBy.name}</div>}
                    </>
                  ),
                },
                {
                  header: 'Actions',
                  hideHeader: true,
                  // One reason for both buttons when refused; a workflow's own experiment is never deleted.
                  cell: (e) => {
                    const may = e.viewerCan.change;
                    return (
                      <div class="actions">
                        <div>
                          <button
                            type="button"
                            class="button"
                            disabled={!may.allowed || updating.fetching || renaming?.id === e.id}
                            onClick={() => setRenaming({ id: e.id, name: e.name })}
                            aria-label={`Rename ${e.name}`}
                          >
                            Rename
                          </button>
                          {!e.workflow && (
                            <>
                              {' '}
                              <button
                                type="button"
                                class="button"
                                disabled={!may.allowed || updating.fetching}
                                onClick={() => change({ id: e.id, deleted: !e.deletedAt })}
                                aria-label={`${e.deletedAt ? 'Restore' : 'Delete'} ${e.name}`}
                              >
                                {e.deletedAt ? 'Restore' : 'Delete'}
                              </button>
                            </>
                          )}
                        </div>
                        <DeniedReason permission={may} />
                      </div>
                    );
                  },
                },
              ]}
            />
            {connection?.pageInfo.hasNextPage && (
              <button type="button" class="button" onClick={() => setAfter(connection.pageInfo.endCursor ?? null)}>
                Next page
              </button>
            )}
          </>
        )}
      </QueryState>
    </section>
  );
}
