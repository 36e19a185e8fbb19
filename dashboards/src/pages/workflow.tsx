// One workflow: its graph, a start-run form generated from its run parameters (typed by the parameter
// schemas of the modules they feed), each task's module parameters, its recent runs and its triggers.

import { useClient, useMutation } from '@urql/preact';
import { useEffect, useMemo, useState } from 'preact/hooks';
import { errorMessage, refetch } from '../api/client';
import { Dag, MAX_DRAWN_NODES } from '../components/dag';
import { type FormValues, initialValues, ParameterTable, ParamFields } from '../components/param-form';
import { DeniedReason, type Permission } from '../components/permitted';
import { FormError, Loading, NotFoundState, QueryState } from '../components/states';
import { StatusBadge } from '../components/status';
import { graphql, type ResultOf } from '../graphql';
import { Time } from '../lib/format';
import { useQuery } from '../lib/query';
import { asSpec, moduleRefsOf, parseFields, runParameterFields, type SpecShape, schemaProperties, withTag } from '../lib/run-form';
import { useTitle } from '../lib/title';
import { Link, navigate } from '../router';
import { TriggersCard } from './workflow-triggers';
import { SpecHistoryCard } from './workflow-versions';

const WORKFLOW = graphql(`
  query WorkflowPage($name: String!) {
    workflow(name: $name) {
      id
      name
      description
      domain
      createdAt
      createdBy { name }
      viewerCan { start { allowed reason } }
      latestVersion { id version createdAt digest spec }
      versions { id version createdAt spec }
    }
    runs(first: 10, filter: { workflow: $name }) {
      edges { node { id status trigger createdAt createdBy { name } } }
    }
  }
`);

const MODULE_VERSION = graphql(`
  query ModuleSchema($ref: String!) {
    moduleVersion(ref: $ref) { id ref parameterSchema module { fullName } }
  }
`);

const START_RUN = graphql(`
  mutation StartRun($workflow: String!, $parameters: JSON, $idempotencyKey: String) {
    startRun(workflow: $workflow, parameters: $parameters, trigger: DASHBOARD, idempotencyKey: $idempotencyKey) { id }
  }
`);

type Resolved = { ref: string; schema: unknown } | { error: string };

export default function WorkflowPage({ name }: { name: string }) {
  useTitle(name);
  const [result, reexecute] = useQuery({ query: WORKFLOW, variables: { name } });
  const workflow = result.data?.workflow;
  const spec = useMemo(() => asSpec(workflow?.latestVersion.spec), [workflow?.latestVersion.id]);
  const modules = useModuleSchemas(spec);

  useEffect(() => {
    if (workflow && location.hash === '#start') document.getElementById('start')?.scrollIntoView();
  }, [Boolean(workflow)]);

  return (
    <QueryState
      data={workflow}
      error={result.error}
      errorTitle="This workflow could not be loaded"
      retry={refetch(reexecute)}
      loading="Loading the workflow…"
      empty={<NotFoundState title={`No workflow named “${name}”`} href="/workflows" link="See all workflows" />}
    >
      {(workflow) => <WorkflowView workflow={workflow} runs={result.data?.runs.edges ?? []} spec={spec} modules={modules} />}
    </QueryState>
  );
}

type WorkflowData = NonNullable<ResultOf<typeof WORKFLOW>['workflow']>;
type RecentRuns = ResultOf<typeof WORKFLOW>['runs']['edges'];

/** What a caller without the workflow's domain's grant sees instead of its spec (the API withholds it, and its digest). */
const specWithheld = (domain: string) => `Withheld: the spec (its tasks and parameter defaults) is ${domain} data, and none of your teams is granted it.`;

function WorkflowView({ workflow, runs, spec, modules }: { workflow: WorkflowData; runs: RecentRuns; spec: SpecShape; modules: ModuleSchemas }) {
  const tasks = spec.tasks ?? [];
  // The spec is there whenever it is readable: null means the API withheld it.
  const withheld = workflow.latestVersion.spec === null;
  return (
    <section aria-labelledby="workflow-title">
      <nav class="breadcrumbs" aria-label="Breadcrumbs">
        <Link href="/workflows">Workflows</Link> <span aria-hidden="true">/</span> <span>{workflow.name}</span>
      </nav>
      <div class="page-header">
        <h1 id="workflow-title">
          {workflow.name} <span class={`chip domain-${workflow.domain}`}>{workflow.domain}</span>
        </h1>
        <Link class="button" href={`/runs?workflow=${encodeURIComponent(workflow.name)}`}>
          All runs of this workflow
        </Link>
      </div>
      {workflow.description && <p class="lead">{workflow.description}</p>}
      <dl class="summary">
        <div>
          <dt>Latest version</dt>
          <dd>
            v{workflow.latestVersion.version} <span class="muted">of {workflow.versions.length}</span>
          </dd>
        </div>
        <div>
          <dt>Updated</dt>
          <dd>
            <Time iso={workflow.latestVersion.createdAt} />
          </dd>
        </div>
        <div>
          <dt>Created by</dt>
          <dd>{workflow.createdBy?.name ?? '—'}</dd>
        </div>
        <div>
          <dt>Digest</dt>
          <dd>
            {workflow.latestVersion.digest === null ? (
              <span class="muted">withheld</span>
            ) : (
              <code class="id">{workflow.latestVersion.digest.slice(0, 19)}</code>
            )}
          </dd>
        </div>
      </dl>

      <div class="layout-split">
        <div class="card" id="start">
          <h2 class="card-title">Start a run</h2>
          {withheld ? (
            <p class="muted">{specWithheld(workflow.domain)}</p>
          ) : modules.loading ? (
            <Loading label="Reading the modules’ parameter schemas…" />
          ) : (
            <StartForm workflow={workflow.name} spec={spec} schemas={modules.schemas} permission={workflow.viewerCan.start} />
          )}
        </div>
        <div class="card">
          <h2 class="card-title">Recent runs</h2>
          {runs.length === 0 ? (
            <p class="muted">No runs yet.</p>
          ) : (
            <ul class="plain-list">
              {runs.map(({ node }) => (
                <li key={node.id}>
                  <Link href={`/runs/${node.id}`}>run {node.id.slice(0, 8)}</Link> <StatusBadge status={node.status} />{' '}
                  <span class="muted">{node.trigger.toLowerCase()} · </span>
                  <Time iso={node.createdAt} />
                </li>
              ))}
            </ul>
          )}
        </div>
      </div>

      <div class="card">
        <h2 class="card-title">Graph</h2>
        {withheld ? (
          <p class="muted">{specWithheld(workflow.domain)}</p>
        ) : tasks.length > MAX_DRAWN_NODES ? (
          <p class="muted">{tasks.length} tasks: too many to draw.</p>
        ) : (
          <Dag
            label={`Task graph of ${workflow.name}`}
            selected={null}
            onSelect={(node) => document.getElementById(`task-${node}`)?.scrollIntoView({ block: 'center' })}
            nodes={tasks.map((t) => ({
              id: t.name,
              label: t.name,
              status: 'SPEC',
              progress: null,
              dependsOn: t.dependsOn ?? [],
              detail: t.module ?? t.workflow ?? '',
              badge: t.when ? 'conditional' : null,
            }))}
          />
        )}
      </div>

      <TriggersCard workflow={workflow.name} />
      <SpecHistoryCard versions={workflow.versions} withheld={withheld ? specWithheld(workflow.domain) : null} />

      <div class="card">
        <h2 class="card-title">Tasks and their module parameters</h2>
        {withheld && <p class="muted">{specWithheld(workflow.domain)}</p>}
        {tasks.map((t) => {
          const resolved = t.module ? modules.byRef.get(t.module) : undefined;
          const properties = resolved && 'schema' in resolved ? schemaProperties(resolved.schema) : [];
          return (
            <details key={t.name} id={`task-${t.name}`} class="task-spec">
              <summary>
                <code>{t.name}</code> <span class="muted">{t.module ?? (t.workflow ? `workflow ${t.workflow}` : '')}</span>
                {resolved && 'ref' in resolved && <span class="muted"> → {resolved.ref}</span>}
                {t.dependsOn?.length ? <span class="muted"> · after {t.dependsOn.join(', ')}</span> : null}
              </summary>
              {t.when && (
                <p class="muted">
                  Runs when <code data-testid="spec-condition">{t.when}</code>, else it is skipped.
                </p>
              )}
              {resolved && 'error' in resolved && <p class="error-text">{resolved.error}</p>}
              <ParameterTable
                properties={properties}
                nameHeader="Parameter"
                last={{
                  header: 'Value in the spec',
                  cell: (p) =>
                    t.parameters && p.name in t.parameters ? <code>{JSON.stringify(t.parameters[p.name])}</code> : <span class="muted">module default</span>,
                }}
                empty={<p class="muted">{t.module ? 'The module declares no parameter schema.' : 'Not a module task.'}</p>}
              />
            </details>
          );
        })}
      </div>
    </section>
  );
}

type ModuleSchemas = ReturnType<typeof useModuleSchemas>;

/** Resolves each module the spec names (as a run starting now would) to read its parameter schema. */
function useModuleSchemas(spec: SpecShape) {
  const client = useClient();
  const refs = moduleRefsOf(spec);
  const key = refs.join(' ');
  const [state, setState] = useState<{ key: string; byRef: Map<string, Resolved> } | null>(null);
  useEffect(() => {
    let current = true;
    void Promise.all(
      refs.map(async (ref): Promise<[string, Resolved]> => {
        const r = await client.query(MODULE_VERSION, { ref: withTag(ref) }).toPromise();
        if (r.error) return [ref, { error: errorMessage(r.error) }];
        if (!r.data?.moduleVersion) return [ref, { error: `${ref} does not resolve to a published version.` }];
        return [ref, { ref: r.data.moduleVersion.ref, schema: r.data.moduleVersion.parameterSchema }];
      }),
    ).then((entries) => current && setState({ key, byRef: new Map(entries) }));
    return () => void (current = false);
  }, [key]);
  const byRef = state?.key === key ? state.byRef : new Map<string, Resolved>();
  const schemas = new Map<string, unknown>();
  for (const [ref, r] of byRef) if ('schema' in r) schemas.set(ref, r.schema);
  return { loading: state?.key !== key, byRef, schemas };
}

function StartForm({ workflow, spec, schemas, permission }: { workflow: string; spec: SpecShape; schemas: Map<string, unknown>; permission: Permission }) {
  const fields = useMemo(() => runParameterFields(spec, schemas), [spec, schemas]);
  const [values, setValues] = useState<FormValues>(() => initialValues(fields));
  const [errors, setErrors] = useState<Record<string, string>>({});
  const [error, setError] = useState<string | null>(null);
  // One key per form: a double submit (or a retried request) starts one run, not two.
  const [idempotencyKey] = useState(randomKey);
  const [state, start] = useMutation(START_RUN);

  const submit = async (event: Event) => {
    event.preventDefault();
    const { parameters, errors: nextErrors } = parseFields(fields, values);
    setErrors(nextErrors);
    if (Object.keys(nextErrors).length) {
      document.getElementById(`start-${Object.keys(nextErrors)[0]}`)?.focus();
      return;
    }
    setError(null);
    const r = await start({ workflow, parameters, idempotencyKey });
    if (r.error) setError(errorMessage(r.error));
    else if (r.data) navigate(`/runs/${r.data.startRun.id}`);
  };

  return (
    <form onSubmit={submit} aria-label={`Start a run of ${workflow}`} noValidate>
      <ParamFields
        fields={fields}
        values={values}
        errors={errors}
        idPrefix="start"
        onChange={(name, value) => {
          setValues({ ...values, [name]: value });
          if (errors[name]) setErrors({ ...errors, [name]: '' });
        }}
      />
      <FormError message={error} />
      <button
        type="submit"
        class="button primary"
        disabled={!permission.allowed || state.fetching}
        title={permission.reason ?? undefined}
        aria-describedby={permission.allowed ? undefined : 'start-denied'}
      >
        {state.fetching ? 'Starting…' : 'Start run'}
      </button>
      <DeniedReason permission={permission} id="start-denied" />
    </form>
  );
}

/** A random idempotency key; crypto.randomUUID exists only in secure contexts, getRandomValues everywhere. */
function randomKey(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  return `dashboard-${Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('')}`;
}
