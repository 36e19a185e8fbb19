// Points a tag (an existing one or a new name) at a version; a deprecated version needs an explicit force.
import { useMutation } from '@urql/preact';
import { useState } from 'preact/hooks';
import { errorMessage } from '../../api/client';
import { DeniedReason, type Permission } from '../../components/permitted';
import { FormError } from '../../components/states';
import { SET_TAG } from './documents';

interface VersionChoice {
  version: string;
  deprecated: boolean;
}

export function PromoteForm({
  module,
  tags,
  versions,
  permission,
  onDone,
}: {
  module: string;
  tags: string[];
  versions: readonly VersionChoice[];
  permission: Permission;
  onDone(): void;
}) {
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
      <button
        type="submit"
        class="button primary"
        disabled={!permission.allowed || state.fetching || !version}
        title={permission.reason ?? undefined}
        aria-describedby={permission.allowed ? undefined : 'promote-denied'}
      >
        {state.fetching ? 'Moving…' : 'Move tag'}
      </button>
      <DeniedReason permission={permission} id="promote-denied" />
      <FormError message={error} />
    </form>
  );
}
