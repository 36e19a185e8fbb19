// A module's page: who owns it and how much it is used, its tags (promoted and rolled back here) with their
// history, and its versions with their manifests, parameter schemas and test results.
import { useMutation } from '@urql/preact';
import { useState } from 'preact/hooks';
import { errorMessage, refetch } from '../../api/client';
import { PermittedButton } from '../../components/permitted';
import { FormError, NotFoundState, QueryState } from '../../components/states';
import { DataTable } from '../../components/table';
import { Time } from '../../lib/format';
import { useQuery } from '../../lib/query';
import { useTitle } from '../../lib/title';
import { Link } from '../../router';
import { MODULE, type ModuleData, ROLLBACK_TAG } from './documents';
import { PromoteForm } from './promote-form';
import { CompareVersionsCard, VersionsCard } from './versions';

export function ModulePage({ fullName }: { fullName: string }) {
  useTitle(fullName);
  const [result, reexecute] = useQuery({ query: MODULE, variables: { name: fullName } });
  const refresh = refetch(reexecute);
  return (
    <QueryState
      data={result.data?.module}
      error={result.error}
      errorTitle="This module could not be loaded"
      retry={refresh}
      loading="Loading the module…"
      empty={<NotFoundState title={`No module named “${fullName}”`} href="/modules" link="See all modules" />}
    >
      {(module) => (
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
          <TagsCard module={module} onChange={refresh} />
          <TagHistoryCard module={module} />
          <CompareVersionsCard module={module} />
          <VersionsCard module={module} />
        </section>
      )}
    </QueryState>
  );
}

function TagsCard({ module, onChange }: { module: ModuleData; onChange(): void }) {
  const [rollbackState, rollback] = useMutation(ROLLBACK_TAG);
  const [error, setError] = useState<string | null>(null);
  const doRollback = async (tag: string) => {
    setError(null);
    const r = await rollback({ module: module.fullName, tag });
    if (r.error) setError(errorMessage(r.error));
    else onChange();
  };
  return (
    <div class="card">
      <h2 class="card-title">Tags</h2>
      <DataTable
        wrap={false}
        rows={module.tags}
        rowKey={(t) => t.tag}
        empty={<p class="muted">No tags.</p>}
        columns={[
          { header: 'Tag', cell: (t) => <span class="chip tag">{t.tag}</span> },
          { header: 'Version', cell: (t) => <a href={`#version-${t.version.version}`}>{t.version.version}</a> },
          { header: 'Moved', cell: (t) => <Time iso={t.updatedAt} /> },
          {
            header: 'Actions',
            hideHeader: true,
            cell: (t) => (
              <PermittedButton
                permission={t.viewerCan.rollback}
                class="button subtle"
                onClick={() => doRollback(t.tag)}
                disabled={rollbackState.fetching}
                aria-label={`Roll back ${t.tag}`}
              >
                Roll back
              </PermittedButton>
            ),
          },
        ]}
      />
      <FormError message={error} />
      <PromoteForm
        module={module.fullName}
        tags={module.tags.map((t) => t.tag)}
        versions={module.versions}
        permission={module.viewerCan.promote}
        onDone={onChange}
      />
    </div>
  );
}

function TagHistoryCard({ module }: { module: ModuleData }) {
  return (
    <div class="card">
      <h2 class="card-title">Tag history</h2>
      <DataTable
        wrap={false}
        label="Tag history"
        rows={module.tagHistory}
        rowKey={(_, i) => i}
        empty={<p class="muted">No tag has moved yet.</p>}
        columns={[
          { header: 'When', cell: (e) => <Time iso={e.at} /> },
          { header: 'Tag', cell: (e) => <span class="chip tag">{e.tag}</span> },
          {
            header: 'Move',
            cell: (e) => (
              <>
                {e.from?.version ?? '∅'} → {e.to.version}
                {e.action === 'rollback' && <span class="chip"> rollback</span>}
              </>
            ),
          },
          { header: 'By', cell: (e) => e.movedBy?.name ?? '—' },
          { header: 'Why', cell: (e) => e.reason ?? '' },
        ]}
      />
    </div>
  );
}
