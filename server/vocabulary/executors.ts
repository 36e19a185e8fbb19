// The states of a hot cluster: compute an executor keeps warm between runs.

export const hotClusterStates = ['STARTING', 'READY', 'ENDED'] as const;
export type HotClusterState = (typeof hotClusterStates)[number];
