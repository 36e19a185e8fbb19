// The executors page's live document, shared with the run page (whose waiting reasons follow the hosts).
import { graphql } from '../graphql';

/** Which executor hosts and hot clusters changed; the first event (`listening`) says it listens from there on. */
export const EXECUTORS_CHANGED = graphql(`
  subscription ExecutorsLive {
    executorsChanged { listening hostIds hotClusters }
  }
`);
