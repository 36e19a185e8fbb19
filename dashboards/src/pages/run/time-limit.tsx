// The run page's time limit: while the run is open, when it ends by ("ends by 10:12, in 12 minutes"); once it has
// ended, the limit alone (the run's message says when the limit is what ended it).
import { formatDateTime, Time } from '../../lib/format';

export function TimeLimit({ seconds, deadlineAt, open }: { seconds: number; deadlineAt: string | null | undefined; open: boolean }) {
  return (
    <div class="run-time-limit">
      <dt>Time limit</dt>
      <dd>
        {seconds} s
        {open &&
          (deadlineAt ? (
            <span>
              {' '}
              · ends by <span title={formatDateTime(deadlineAt)}>{formatDateTime(deadlineAt)}</span>, <Time iso={deadlineAt} />
            </span>
          ) : (
            <span> · counted from its admission</span>
          ))}
      </dd>
    </div>
  );
}
