// What a deployment's router measured of a revision's traffic (server/deployments/serving.ts), as DeploymentRevision.serving.
import type { RevisionServing } from '../../server/deployments/serving';
import { builder } from '../builder';

export const ServingRef = builder.objectRef<RevisionServing>('RevisionServing').implement({
  description:
    "What the deployment's router measured of a revision's traffic in the last window recorded (serving observations of its model version, every ATELIER_DEPLOYMENT_STATS_MS).",
  fields: (t) => ({
    at: t.expose('at', { type: 'DateTime', description: 'When the window ended.' }),
    requests: t.exposeFloat('requests', { description: 'Requests answered in the window.' }),
    errorRate: t.exposeFloat('errorRate', { description: 'The share of them that were 5xx or got no whole answer (0 to 1).' }),
    latencyP50Ms: t.exposeFloat('latencyP50Ms'),
    latencyP99Ms: t.exposeFloat('latencyP99Ms'),
  }),
});
