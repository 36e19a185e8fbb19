// The metrics a deployment's router measures of each revision's traffic (server/deployments/serving.ts records them).
// `serving.*` is Atelier's own: recorded by the control plane only (`recorded_by` null), refused through the
// observations API (server/monitoring/observations.ts), so a writer of a model's namespace cannot pass or trip a
// rollout's gates, or show figures a router never measured.

export const SERVING_METRICS = ['serving.requests', 'serving.error_rate', 'serving.latency_p50_ms', 'serving.latency_p99_ms'] as const;
export const SERVING_METRIC_PREFIX = 'serving.';
export const isServingMetric = (metric: string) => metric.startsWith(SERVING_METRIC_PREFIX);
