// Metric values on the wire. JSON has no NaN or ±Infinity (JSON.stringify writes null), yet a diverging loss is
// exactly what a tracker must keep: every hop (module → host → bus → control plane) writes them as the strings
// "NaN", "Infinity" and "-Infinity" and reads them back here. Anything else that is not a number is no metric.
export type WireMetricValue = number | 'NaN' | 'Infinity' | '-Infinity';

/** A number as it travels: finite numbers as themselves, the three specials as strings. */
export function encodeMetricValue(value: number): WireMetricValue {
  if (Number.isFinite(value)) return value;
  if (Number.isNaN(value)) return 'NaN';
  return value > 0 ? 'Infinity' : '-Infinity';
}

/** The number a wire value stands for, or undefined when it is no metric value (a non-numeric string, null, …). */
export function decodeMetricValue(value: unknown): number | undefined {
  if (typeof value === 'number') return value;
  if (value === 'NaN') return Number.NaN;
  if (value === 'Infinity') return Number.POSITIVE_INFINITY;
  if (value === '-Infinity') return Number.NEGATIVE_INFINITY;
  return undefined;
}
