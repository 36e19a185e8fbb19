// The deployer plugins the control plane drives beside the `local` one (which the deployment service always holds,
// its state under the data directory), configured from the environment as server/executors.ts does for executors:
// `kserve` when ATELIER_KSERVE_NAMESPACE is set (in-cluster auth, or the default kubeconfig; its serving figures from
// Prometheus when ATELIER_KSERVE_PROMETHEUS_URL is set), and one `webhook`
// deployer per entry of ATELIER_WEBHOOK_DEPLOYERS. Each is imported only when configured (the Kubernetes client alone
// takes ~2 s to load).
import { readFileSync } from 'node:fs';
import type { Deployer } from '../plugins/deployer-sdk';
import { ConfigError } from './config';

/** One entry of ATELIER_WEBHOOK_DEPLOYERS: `{"name": "serving-team", "url": "https://…", "secretFile": "/run/secrets/…"}`. */
interface WebhookDeployerEntry {
  name: string;
  url: string;
  /** The shared secret, read from a file (`secretFile`) or an environment variable named by `secretEnv`. */
  secretFile?: string;
  secretEnv?: string;
  /** The previous secret during a rotation, likewise. */
  previousSecretFile?: string;
  previousSecretEnv?: string;
}

const WEBHOOK_HELP =
  'ATELIER_WEBHOOK_DEPLOYERS is a JSON list like [{"name":"serving-team","url":"https://serving.example.com/atelier","secretFile":"/run/secrets/serving-team"}] (secretEnv names a variable instead of secretFile)';

function secretOf(
  env: NodeJS.ProcessEnv,
  entry: WebhookDeployerEntry,
  file: string | undefined,
  variable: string | undefined,
  what: string,
): string | undefined {
  if (file) {
    try {
      const secret = readFileSync(file, 'utf8').trim();
      if (secret) return secret;
    } catch (error) {
      throw new ConfigError(`webhook deployer "${entry.name}": cannot read its ${what} from ${file}: ${(error as Error).message}`);
    }
    throw new ConfigError(`webhook deployer "${entry.name}": ${file} (its ${what}) is empty`);
  }
  if (variable) {
    const secret = env[variable]?.trim();
    if (!secret) throw new ConfigError(`webhook deployer "${entry.name}": ${variable} (its ${what}) is not set`);
    return secret;
  }
  return undefined;
}

function webhookEntries(raw: string): WebhookDeployerEntry[] {
  let parsed: unknown;
  try {
    parsed = JSON.parse(raw);
  } catch (error) {
    throw new ConfigError(`ATELIER_WEBHOOK_DEPLOYERS is not JSON (${(error as Error).message}). ${WEBHOOK_HELP}.`);
  }
  if (!Array.isArray(parsed)) throw new ConfigError(`ATELIER_WEBHOOK_DEPLOYERS is not a list. ${WEBHOOK_HELP}.`);
  return parsed.map((entry, i) => {
    const e = entry as Partial<WebhookDeployerEntry> | null;
    if (!e || typeof e.name !== 'string' || typeof e.url !== 'string')
      throw new ConfigError(`ATELIER_WEBHOOK_DEPLOYERS[${i}] needs a "name" and a "url". ${WEBHOOK_HELP}.`);
    if (!e.secretFile && !e.secretEnv)
      throw new ConfigError(`ATELIER_WEBHOOK_DEPLOYERS[${i}] ("${e.name}") needs "secretFile" or "secretEnv". ${WEBHOOK_HELP}.`);
    return e as WebhookDeployerEntry;
  });
}

/**
 * Where the kserve deployer reads what each revision served (Knative's queue-proxy metrics): ATELIER_KSERVE_PROMETHEUS_URL,
 * with ATELIER_KSERVE_PROMETHEUS_TOKEN_FILE holding a bearer token where Prometheus sits behind one.
 */
function kservePrometheus(env: NodeJS.ProcessEnv) {
  const url = env.ATELIER_KSERVE_PROMETHEUS_URL;
  if (!url) return undefined;
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new ConfigError("ATELIER_KSERVE_PROMETHEUS_URL is not a URL: give Prometheus' base URL, like http://prometheus.monitoring:9090");
  }
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:')
    throw new ConfigError(`ATELIER_KSERVE_PROMETHEUS_URL must be an http(s) URL, not ${parsed.protocol}: like http://prometheus.monitoring:9090`);
  const file = env.ATELIER_KSERVE_PROMETHEUS_TOKEN_FILE;
  if (!file) return { url };
  let token: string;
  try {
    token = readFileSync(file, 'utf8').trim();
  } catch (error) {
    throw new ConfigError(
      `ATELIER_KSERVE_PROMETHEUS_TOKEN_FILE: cannot read ${file} (${(error as NodeJS.ErrnoException).code ?? (error as Error).message}): point it at a readable file holding the token`,
    );
  }
  if (!token) throw new ConfigError(`ATELIER_KSERVE_PROMETHEUS_TOKEN_FILE: ${file} is empty: write the bearer token into it`);
  return { url, bearerToken: token };
}

const listOf = (raw: string | undefined) =>
  (raw ?? '')
    .split(',')
    .map((e) => e.trim())
    .filter(Boolean);

export async function deployersFromEnv(env: NodeJS.ProcessEnv = process.env): Promise<Deployer[]> {
  const deployers: Deployer[] = [];
  if (env.ATELIER_KSERVE_NAMESPACE) {
    const [{ KubeConfig }, { createKServeDeployer }] = await Promise.all([import('@kubernetes/client-node'), import('../plugins/deployers/kserve')]);
    const kubeConfig = new KubeConfig();
    if (env.KUBERNETES_SERVICE_HOST) kubeConfig.loadFromCluster();
    else kubeConfig.loadFromDefault();
    deployers.push(
      createKServeDeployer({
        kubeConfig,
        namespace: env.ATELIER_KSERVE_NAMESPACE,
        namespaces: listOf(env.ATELIER_KSERVE_NAMESPACES),
        storageUri: env.ATELIER_KSERVE_STORAGE_URI || undefined,
        storageUriPrefixes: listOf(env.ATELIER_KSERVE_STORAGE_URI_PREFIXES),
        modelFormat: env.ATELIER_KSERVE_MODEL_FORMAT || undefined,
        runtime: env.ATELIER_KSERVE_RUNTIME || undefined,
        prometheus: kservePrometheus(env),
      }),
    );
  }
  if (env.ATELIER_WEBHOOK_DEPLOYERS) {
    const { createWebhookDeployer } = await import('../plugins/deployers/webhook');
    for (const entry of webhookEntries(env.ATELIER_WEBHOOK_DEPLOYERS)) {
      try {
        deployers.push(
          createWebhookDeployer({
            name: entry.name,
            url: entry.url,
            secret: secretOf(env, entry, entry.secretFile, entry.secretEnv, 'secret')!,
            previousSecret: secretOf(env, entry, entry.previousSecretFile, entry.previousSecretEnv, 'previous secret'),
          }),
        );
      } catch (error) {
        if (error instanceof ConfigError) throw error;
        throw new ConfigError(`webhook deployer "${entry.name}": ${(error as Error).message}`);
      }
    }
  }
  return deployers;
}
