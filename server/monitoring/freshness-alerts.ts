// Freshness alerts: the freshness check (server/governance/freshness.ts) opens one alert per late dataset for the team
// owning its namespace, and resolves it when a new version makes the dataset on time again; both in the check's
// transaction, with their monitor events, audit rows, webhooks and (for an opening) the `alert.opened` trigger signal.
import type { FreshnessAlerts } from '../governance/freshness';
import { openAlert, resolveAlertByCheck } from './alerts';

const keyOf = (datasetId: string) => `freshness:${datasetId}`;

export const freshnessAlerts: FreshnessAlerts = {
  async late(tx, change) {
    await openAlert(tx, {
      key: keyOf(change.datasetId),
      teamId: change.team,
      target: { kind: 'DATASET', id: change.datasetId },
      title: `${change.dataset} is late: a new version was due ${change.dueAt.toISOString()} (expected every ${change.expectedEvery}); readers ${change.policy === 'IGNORE' ? 'go on' : change.policy === 'WAIT' ? 'wait' : 'fail'}`,
      details: {
        expectedEvery: change.expectedEvery,
        lastVersionAt: change.lastVersionAt.toISOString(),
        dueAt: change.dueAt.toISOString(),
        policy: change.policy,
      },
    });
  },
  async fresh(tx, change) {
    await resolveAlertByCheck(tx, keyOf(change.datasetId), `${change.dataset} is on time again: a new version arrived ${change.lastVersionAt.toISOString()}`);
  },
};
