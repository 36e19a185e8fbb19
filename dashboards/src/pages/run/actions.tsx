// What can be done to a run: cancel it (asked twice), clone it with changed parameters, or rerun it. Each button
// asks the run's `viewerCan` first: an action the caller may not take is disabled with the API's reason.

import { useMutation } from '@urql/preact';
import { useMemo, useState } from 'preact/hooks';
import { errorMessage } from '../../api/client';
import { type FormValues, initialValues, ParamFields } from '../../components/param-form';
import { PermittedButton } from '../../components/permitted';
import { FormError } from '../../components/states';
import { terminalRunStatuses } from '../../components/status';
import { asSpec, parseFields, runParameterFields } from '../../lib/run-form';
import { navigate } from '../../router';
import { CANCEL_RUN, CLONE_RUN, RERUN_RUN } from './documents';
import type { RunData, RunStatus, TaskView } from './store';

/** The buttons, in the page header; the clone form opens below the header (`cloning`, `onClone`). */
export function RunActions({
  run,
  status,
  tasks,
  cloning,
  onClone,
}: {
  run: RunData;
  status: RunStatus;
  tasks: TaskView[];
  cloning: boolean;
  onClone(open: boolean): void;
}) {
  const [confirming, setConfirming] = useState(false);
  const can = run.viewerCan;
  const [cancelState, cancel] = useMutation(CANCEL_RUN);
  const [rerunState, rerun] = useMutation(RERUN_RUN);
  const [error, setError] = useState<string | null>(null);
  const ended = terminalRunStatuses.has(status);
  const failedSome = tasks.some((t) => t.status !== 'SUCCEEDED');

  const doCancel = async () => {
    setError(null);
    const r = await cancel({ id: run.id });
    setConfirming(false);
    if (r.error) setError(errorMessage(r.error));
  };
  const doRerun = async (from: 'FAILED' | 'ALL') => {
    setError(null);
    const r = await rerun({ id: run.id, from });
    if (r.error) setError(errorMessage(r.error));
    else if (r.data) navigate(`/runs/${r.data.rerunRun.id}`);
  };

  return (
    <div class="actions">
      <div class="button-row">
        {!ended &&
          (confirming ? (
            // biome-ignore lint/a11y/useSemanticElements: a cluster of buttons, not form fields; <fieldset> would be the wrong element
            <span class="confirm" role="group" aria-label="Confirm cancelling">
              <span>Cancel this run?</span>
              {/* biome-ignore lint/a11y/noAutofocus: the confirm step appears because the user asked to cancel; focus moves to its answer */}
              <button type="button" class="button danger" onClick={doCancel} disabled={cancelState.fetching} autoFocus>
                {cancelState.fetching ? 'Cancelling…' : 'Yes, cancel run'}
              </button>
              <button type="button" class="button" onClick={() => setConfirming(false)}>
                Keep running
              </button>
            </span>
          ) : (
            <PermittedButton permission={can.cancel} class="button danger" onClick={() => setConfirming(true)}>
              Cancel run…
            </PermittedButton>
          ))}
        <PermittedButton permission={can.clone} class="button" aria-expanded={cloning} aria-controls="clone-form" onClick={() => onClone(!cloning)}>
          Clone…
        </PermittedButton>
        {ended && failedSome && (
          <PermittedButton
            permission={can.rerun}
            class="button"
            onClick={() => doRerun('FAILED')}
            disabled={rerunState.fetching}
            title="Run again what did not succeed, reusing the rest"
          >
            Rerun failed
          </PermittedButton>
        )}
        {ended && (
          <PermittedButton
            permission={can.rerun}
            class="button subtle"
            onClick={() => doRerun('ALL')}
            disabled={rerunState.fetching}
            title="Run every task again with the same pinned modules"
          >
            Rerun all
          </PermittedButton>
        )}
      </div>
      <FormError message={error} />
    </div>
  );
}

export function CloneForm({ run, tasks, onClose }: { run: RunData; tasks: TaskView[]; onClose(): void }) {
  const spec = asSpec(run.workflowVersion?.spec);
  // The clone keeps the pinned module versions, so their schemas type the fields.
  const fields = useMemo(() => {
    const schemas = new Map<string, unknown>();
    for (const t of spec.tasks ?? []) {
      const task = tasks.find((x) => x.node === t.name);
      if (t.module && task?.moduleVersion) schemas.set(t.module, task.moduleVersion.parameterSchema);
    }
    return runParameterFields(spec, schemas);
  }, [run.workflowVersion?.id]);
  const [values, setValues] = useState<FormValues>(() => initialValues(fields, (run.parameters ?? {}) as Record<string, unknown>));
  const [errors, setErrors] = useState<Record<string, string>>({});
  const [state, clone] = useMutation(CLONE_RUN);
  const [error, setError] = useState<string | null>(null);

  const submit = async (event: Event) => {
    event.preventDefault();
    const { parameters, errors: nextErrors } = parseFields(fields, values);
    setErrors(nextErrors);
    if (Object.keys(nextErrors).length) return;
    setError(null);
    const r = await clone({ id: run.id, parameters });
    if (r.error) setError(errorMessage(r.error));
    else if (r.data) navigate(`/runs/${r.data.cloneRun.id}`);
  };

  return (
    <form id="clone-form" class="card clone-form" onSubmit={submit} aria-labelledby="clone-title" noValidate>
      <h2 id="clone-title" class="card-title">
        Clone with changed parameters
      </h2>
      <p class="hint">The clone runs workflow version {run.workflowVersion?.version} with the same pinned module versions; change any parameter below.</p>
      <ParamFields fields={fields} values={values} errors={errors} idPrefix="clone" onChange={(name, value) => setValues({ ...values, [name]: value })} />
      <FormError message={error} />
      <div class="button-row">
        <button type="submit" class="button primary" disabled={state.fetching}>
          {state.fetching ? 'Starting…' : 'Start clone'}
        </button>
        <button type="button" class="button" onClick={onClose}>
          Close
        </button>
      </div>
    </form>
  );
}
