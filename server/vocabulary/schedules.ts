// What a schedule does about missed ticks and overlapping runs, and how each fire ended.

export const catchUpPolicies = ['SKIP', 'LATEST', 'ALL'] as const;
export type CatchUpPolicy = (typeof catchUpPolicies)[number];

export const overlapPolicies = ['ALLOW', 'SKIP', 'CANCEL_PREVIOUS'] as const;
export type OverlapPolicy = (typeof overlapPolicies)[number];

export const fireOutcomes = ['PENDING', 'STARTED', 'SKIPPED_OVERLAP', 'SKIPPED_MISSED', 'FAILED'] as const;
export type FireOutcome = (typeof fireOutcomes)[number];
