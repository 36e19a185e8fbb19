// Pieces the alerts inbox and the monitors pages share: links to a monitor's target, an alert's state chip, and a
// table of monitor events (who did what, when and why).
import type { ComponentChildren } from 'preact';
import { DataTable } from '../components/table';
import { Time } from '../lib/format';
import { Link } from '../router';

export interface TargetValue {
  kind: string;
  ref: string;
}

const path = (ns: string, name: string) => `${encodeURIComponent(ns)}/${encodeURIComponent(name)}`;

/** The page of a monitor's target: a model version or alias → its model; a dataset; a workflow. */
export function targetHref(target: TargetValue): string | null {
  if (target.kind === 'WORKFLOW') return `/workflows/${encodeURIComponent(target.ref)}`;
  const [ns, rest] = target.ref.split('/');
  if (!ns || !rest) return null;
  if (target.kind === 'DATASET') return `/datasets/${path(ns, rest)}`;
  return `/models/${path(ns, rest.split('@')[0]!)}`;
}

export function TargetLink({ target }: { target: TargetValue }) {
  const href = targetHref(target);
  const text = `${target.kind.toLowerCase().replace('_', ' ')} ${target.ref}`;
  return href ? <Link href={href}>{text}</Link> : <span>{text}</span>;
}

export const monitorHref = (id: string) => `/monitors/${encodeURIComponent(id)}`;
export const alertHref = (id: string) => `/alerts?alert=${encodeURIComponent(id)}`;

const stateClass: Record<string, string> = { OPEN: 'warn', ACKNOWLEDGED: 'tag', RESOLVED: 'ok', FALSE_POSITIVE: 'ok' };

export function AlertStateChip({ state }: { state: string }) {
  return (
    <span class={`chip ${stateClass[state] ?? ''}`} data-alert-state={state}>
      {state.toLowerCase().replace('_', ' ')}
    </span>
  );
}

export interface EventValue {
  id: string;
  kind: string;
  at: string;
  reason: string;
  details: unknown;
  alertId?: string | null;
  actor?: { name: string } | null;
}

function detailText(e: EventValue): string {
  const d = (e.details ?? {}) as Record<string, unknown>;
  if (e.kind === 'ANNOTATED' && d.from) return `window ${new Date(String(d.from)).toLocaleString()} – ${new Date(String(d.to)).toLocaleString()}`;
  if (e.kind === 'REBASELINED') return `rule ${String(d.rule)}: baseline ${String(d.previous ?? '—')} → ${String(d.baseline)}`;
  return '';
}

/** Monitor events as a table: when, what, who (the evaluator when nobody), why. */
export function EventsTable({ events, label, withAlert = false }: { events: readonly EventValue[]; label: string; withAlert?: boolean }) {
  return (
    <DataTable
      wrap={false}
      label={label}
      rows={events}
      rowKey={(e) => e.id}
      rowProps={(e) => ({ 'data-event': e.kind })}
      empty={<p class="muted">Nothing has happened yet.</p>}
      columns={[
        { header: 'When', cell: (e) => <Time iso={e.at} /> },
        { header: 'What', rowHeader: true, cell: (e) => <span class="chip">{e.kind.toLowerCase().replace('_', ' ')}</span> },
        { header: 'Who', cell: (e) => e.actor?.name ?? <span class="muted">evaluator</span> },
        {
          header: 'Why',
          cell: (e) => (
            <>
              {e.reason || <span class="muted">—</span>}
              {detailText(e) && <div class="row-message">{detailText(e)}</div>}
            </>
          ),
        },
        ...(withAlert
          ? [{ header: 'Alert', cell: (e: EventValue) => (e.alertId ? <Link href={alertHref(e.alertId)}>alert {e.alertId.slice(0, 8)}</Link> : '—') }]
          : []),
      ]}
    />
  );
}

/** A summary list (`dl.summary`): one term and its value per entry; entries whose value is false are left out. */
export function Facts({ items, label }: { items: [string, ComponentChildren | false][]; label?: string }) {
  return (
    <dl class="summary" aria-label={label}>
      {items
        .filter(([, v]) => v !== false)
        .map(([term, v]) => (
          <div key={term}>
            <dt>{term}</dt>
            <dd>{v}</dd>
          </div>
        ))}
    </dl>
  );
}
