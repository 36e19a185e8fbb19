// Status badges: colour plus the word (never colour alone), in one palette shared with the DAG.
const labels: Record<string, string> = {
  QUEUED: 'Queued',
  RUNNING: 'Running',
  SUCCEEDED: 'Succeeded',
  FAILED: 'Failed',
  CANCELLED: 'Cancelled',
  PENDING: 'Pending',
  READY: 'Ready',
  RETRYING: 'Retrying',
  SKIPPED: 'Skipped',
  TIMED_OUT: 'Timed out',
};

export const statusLabel = (status: string) => labels[status] ?? status;

export function StatusBadge({ status }: { status: string }) {
  return (
    <span class={`status status-${status}`} data-status={status}>
      {statusLabel(status)}
    </span>
  );
}

export const terminalRunStatuses = new Set(['SUCCEEDED', 'FAILED', 'CANCELLED']);
export const terminalTaskStatuses = new Set(['SUCCEEDED', 'FAILED', 'CANCELLED', 'TIMED_OUT', 'SKIPPED']);
