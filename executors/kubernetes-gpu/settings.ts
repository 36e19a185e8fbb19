// Per-task settings of the `kubernetes-gpu` executor (`task.settings['kubernetes-gpu']`), checked strictly: a typo
// or a malformed quantity is a permanent task failure with a message naming the field, never a broken manifest.

export interface Toleration {
  key?: string;
  operator?: 'Exists' | 'Equal';
  value?: string;
  effect?: 'NoSchedule' | 'PreferNoSchedule' | 'NoExecute';
  tolerationSeconds?: number;
}

export interface KubernetesGpuSettings {
  /** Container image; the executor's default runner image when unset. */
  image?: string;
  /** GPUs per node (pod), requested as `limits["nvidia.com/gpu"]`. */
  gpus: number;
  /** Required GPU products (`nvidia.com/gpu.product` node label values), any of them. */
  gpuProduct?: string[];
  nodeSelector?: Record<string, string>;
  /** Replaces the default toleration (`nvidia.com/gpu` Exists NoSchedule when gpus > 0) only if one names that key. */
  tolerations?: Toleration[];
  cpu?: string;
  memory?: string;
  /** Kueue LocalQueue: the Job is labelled and created suspended until Kueue admits it. */
  queue?: string;
  /** Pods that train together (torchrun nodes); > 1 makes an Indexed Job with a headless Service. */
  nodes: number;
  /** Replaces the image's entrypoint. */
  command?: string[];
  serviceAccount?: string;
}

export class SettingsError extends Error {}

/** A hot cluster's spec (`cluster create --executor kubernetes-gpu`): how many executor-host pods, and their shape. */
export interface HotClusterSettings {
  /** Executor-host pods kept running (`workers`, or `replicas` as `atelier cluster create --replicas` sends). */
  replicas: number;
  pod: KubernetesGpuSettings;
}

const HOT_POD_FIELDS = ['image', 'gpus', 'gpuProduct', 'nodeSelector', 'tolerations', 'cpu', 'memory', 'serviceAccount'];
const MAX_REPLICAS = 1_000;

/** Parses a hot cluster's spec; throws a {@link SettingsError} naming the offending field. */
export function parseHotClusterSpec(
  raw: Record<string, unknown> | undefined,
  defaults: { gpus: number; serviceAccounts?: readonly string[] },
): HotClusterSettings {
  const { workers, replicas, ...pod } = raw ?? {};
  if (workers !== undefined && replicas !== undefined && workers !== replicas) {
    throw new SettingsError(`hot cluster spec gives both workers (${describe(workers)}) and replicas (${describe(replicas)}); give one`);
  }
  const count = integer(workers ?? replicas, workers !== undefined ? 'hot cluster spec.workers' : 'hot cluster spec.replicas', 1, MAX_REPLICAS) ?? 1;
  return { replicas: count, pod: parseSettings(pod, defaults, 'hot cluster spec', [...HOT_POD_FIELDS]) };
}

const KNOWN = ['image', 'gpus', 'gpuProduct', 'nodeSelector', 'tolerations', 'cpu', 'memory', 'queue', 'nodes', 'command', 'serviceAccount'];
// Kubernetes resource.Quantity: a decimal number with an optional binary or decimal SI suffix or exponent.
const QUANTITY = /^[+]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+|[KMGTPE]i|[mkMGTPE]|n|u)?$/;
const LABEL_VALUE = /^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$/;
const QUALIFIED_NAME = /^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*\/)?[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$/;
const DNS_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const MAX_NODES = 1_000;
const MAX_GPUS = 64;

const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/**
 * Parses `settings['kubernetes-gpu']`; throws a {@link SettingsError} naming the offending field. `where` names
 * the object in messages, `known` narrows the accepted fields (a hot cluster's spec takes the pod-shaping ones).
 */
export function parseSettings(
  raw: unknown,
  defaults: { gpus: number; serviceAccounts?: readonly string[] },
  where = 'settings["kubernetes-gpu"]',
  known: readonly string[] = KNOWN,
): KubernetesGpuSettings {
  if (raw === undefined || raw === null) return { gpus: defaults.gpus, nodes: 1 };
  if (!isRecord(raw)) throw new SettingsError(`${where} must be an object, got ${describe(raw)}`);
  const unknown = Object.keys(raw).filter((k) => !known.includes(k));
  if (unknown.length > 0) {
    throw new SettingsError(
      `unknown setting${unknown.length > 1 ? 's' : ''} ${unknown.map((k) => `"${k}"`).join(', ')} in ${where} (known: ${known.join(', ')})`,
    );
  }
  const field = (name: string) => `${where}.${name}`;
  const out: KubernetesGpuSettings = {
    gpus: integer(raw.gpus, field('gpus'), 0, MAX_GPUS) ?? defaults.gpus,
    nodes: integer(raw.nodes, field('nodes'), 1, MAX_NODES) ?? 1,
  };
  if (raw.image !== undefined) out.image = nonEmptyString(raw.image, field('image'));
  if (raw.gpuProduct !== undefined) {
    const products = Array.isArray(raw.gpuProduct) ? raw.gpuProduct : [raw.gpuProduct];
    if (products.length === 0) throw new SettingsError(`${field('gpuProduct')} must name at least one product`);
    out.gpuProduct = products.map((p, i) => {
      const value = nonEmptyString(p, `${field('gpuProduct')}[${i}]`);
      if (value.length > 63 || !LABEL_VALUE.test(value))
        throw new SettingsError(`${field('gpuProduct')} "${value}" is not a valid node label value (e.g. "NVIDIA-A100-SXM4-80GB")`);
      return value;
    });
  }
  if (raw.nodeSelector !== undefined) {
    if (!isRecord(raw.nodeSelector)) throw new SettingsError(`${field('nodeSelector')} must be an object of label → value, got ${describe(raw.nodeSelector)}`);
    out.nodeSelector = {};
    for (const [key, value] of Object.entries(raw.nodeSelector)) {
      if (!QUALIFIED_NAME.test(key) || key.length > 317) throw new SettingsError(`${field('nodeSelector')} key "${key}" is not a valid label key`);
      if (typeof value !== 'string' || value.length > 63 || !LABEL_VALUE.test(value)) {
        throw new SettingsError(`${field('nodeSelector')}["${key}"] must be a label value (≤ 63 letters, digits, "-", "_", "."), got ${describe(value)}`);
      }
      out.nodeSelector[key] = value;
    }
  }
  if (raw.tolerations !== undefined) {
    if (!Array.isArray(raw.tolerations)) throw new SettingsError(`${field('tolerations')} must be an array, got ${describe(raw.tolerations)}`);
    out.tolerations = raw.tolerations.map((t, i) => toleration(t, `${field('tolerations')}[${i}]`));
  }
  if (raw.cpu !== undefined) out.cpu = quantity(raw.cpu, field('cpu'), '"4" or "500m"');
  if (raw.memory !== undefined) out.memory = quantity(raw.memory, field('memory'), '"32Gi"');
  if (raw.queue !== undefined) {
    const queue = nonEmptyString(raw.queue, field('queue'));
    if (queue.length > 63 || !LABEL_VALUE.test(queue)) throw new SettingsError(`${field('queue')} "${queue}" is not a valid Kueue LocalQueue name`);
    out.queue = queue;
  }
  if (raw.command !== undefined) {
    if (!Array.isArray(raw.command) || raw.command.length === 0 || !raw.command.every((c) => typeof c === 'string')) {
      throw new SettingsError(`${field('command')} must be a non-empty array of strings, got ${describe(raw.command)}`);
    }
    out.command = [...raw.command];
  }
  if (raw.serviceAccount !== undefined) {
    const sa = nonEmptyString(raw.serviceAccount, field('serviceAccount'));
    if (sa.length > 253 || !DNS_SUBDOMAIN.test(sa)) throw new SettingsError(`${field('serviceAccount')} "${sa}" is not a valid service account name`);
    if (!(defaults.serviceAccounts ?? []).includes(sa))
      throw new SettingsError(
        `${field('serviceAccount')} "${sa}" is not one this executor lets tasks run as (${(defaults.serviceAccounts ?? []).join(', ') || 'none'}); an operator lists it in serviceAccounts (ATELIER_K8S_SERVICE_ACCOUNTS)`,
      );
    out.serviceAccount = sa;
  }
  return out;
}

function toleration(raw: unknown, where: string): Toleration {
  if (!isRecord(raw)) throw new SettingsError(`${where} must be an object, got ${describe(raw)}`);
  const known = ['key', 'operator', 'value', 'effect', 'tolerationSeconds'];
  const extra = Object.keys(raw).filter((k) => !known.includes(k));
  if (extra.length > 0) throw new SettingsError(`${where} has unknown field(s) ${extra.join(', ')} (known: ${known.join(', ')})`);
  const t: Toleration = {};
  if (raw.key !== undefined) t.key = nonEmptyString(raw.key, `${where}.key`);
  if (raw.operator !== undefined) {
    if (raw.operator !== 'Exists' && raw.operator !== 'Equal')
      throw new SettingsError(`${where}.operator must be "Exists" or "Equal", got ${describe(raw.operator)}`);
    t.operator = raw.operator;
  }
  if (raw.value !== undefined) {
    if (typeof raw.value !== 'string') throw new SettingsError(`${where}.value must be a string`);
    if (t.operator === 'Exists' && raw.value !== '') throw new SettingsError(`${where}.value must be empty when operator is "Exists"`);
    t.value = raw.value;
  }
  if (raw.effect !== undefined) {
    if (raw.effect !== 'NoSchedule' && raw.effect !== 'PreferNoSchedule' && raw.effect !== 'NoExecute') {
      throw new SettingsError(`${where}.effect must be NoSchedule, PreferNoSchedule or NoExecute, got ${describe(raw.effect)}`);
    }
    t.effect = raw.effect;
  }
  if (raw.tolerationSeconds !== undefined) {
    if (t.effect !== 'NoExecute') throw new SettingsError(`${where}.tolerationSeconds needs effect "NoExecute"`);
    t.tolerationSeconds = integer(raw.tolerationSeconds, `${where}.tolerationSeconds`, 0, 2 ** 31 - 1)!;
  }
  if (t.key === undefined && t.operator !== 'Exists') throw new SettingsError(`${where} without a key must use operator "Exists"`);
  return t;
}

function integer(raw: unknown, where: string, min: number, max: number): number | undefined {
  if (raw === undefined) return undefined;
  if (typeof raw !== 'number' || !Number.isInteger(raw) || raw < min || raw > max) {
    throw new SettingsError(`${where} must be an integer from ${min} to ${max}, got ${describe(raw)}`);
  }
  return raw;
}

function nonEmptyString(raw: unknown, where: string): string {
  if (typeof raw !== 'string' || raw.trim() === '') throw new SettingsError(`${where} must be a non-empty string, got ${describe(raw)}`);
  return raw;
}

function quantity(raw: unknown, where: string, example: string): string {
  const text = typeof raw === 'number' && Number.isFinite(raw) && raw > 0 ? String(raw) : raw;
  if (typeof text !== 'string' || !QUANTITY.test(text) || Number.parseFloat(text) <= 0) {
    throw new SettingsError(`${where} must be a positive Kubernetes quantity such as ${example}, got ${describe(raw)}`);
  }
  return text;
}

function describe(value: unknown): string {
  if (value === undefined) return 'nothing';
  const json = JSON.stringify(value);
  return json === undefined ? String(value) : json.length > 60 ? `${json.slice(0, 60)}…` : json;
}
