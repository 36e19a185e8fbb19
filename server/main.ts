// `npm start`: reads the configuration from the environment and runs the control plane until interrupted.

import { redactUrl } from '../plugins/redact-url';
import { buildApp } from './app';
import { adminTokenFile } from './auth/admin-token';
import { ConfigError, loadConfig } from './config';
import { deployersFromEnv } from './deployers';
import { checkListenable } from './http/server';
import { surviveLostConnections } from './lifecycle/transient-errors';

async function main() {
  surviveLostConnections((m) => console.error(`warning: ${m}`));
  const config = loadConfig();
  await checkListenable(config); // a taken port is said before the database opens, not after the whole start
  const app = await buildApp(config, { deployments: { deployers: await deployersFromEnv() } });
  const url = await app.start();
  const tokenFile = adminTokenFile(config.dataDir);
  console.log(`
Atelier control plane is up.
  Dashboard    ${url}/
  GraphQL      ${url}/graphql   (HTTP, graphql-ws and SSE subscriptions)
  Health       ${url}/health
  Database     ${app.database.kind === 'pglite' ? `embedded PGlite in ${config.dataDir}` : 'Postgres (DATABASE_URL)'}
  Bus          ${app.bus.kind === 'memory' ? 'in-process' : `NATS JetStream (${redactUrl(config.natsUrl ?? '')})`}
  Objects      ${app.services.store.describe()}${config.objectStore.backend === 'local' ? ' (replicas must share it: see ATELIER_OBJECT_STORE)' : ''}
  Deployers    ${app.services.deployments.deployerNames().join(', ')}
  Executors    ${config.embeddedExecutor ? `embedded host serving pools: ${config.pools.join(', ')}` : 'none embedded: run `npx atelier executor --pool local`'}

Authenticate with the admin token (also in ${tokenFile}):
  export ATELIER_URL=${url}
  export ATELIER_TOKEN=${app.adminToken}
  curl -H "Authorization: Bearer $ATELIER_TOKEN" -H 'content-type: application/json' -d '{"query":"{ viewer { name role } }"}' $ATELIER_URL/graphql
`);
  let stopping = false;
  const shutdown = async (signal: string) => {
    if (stopping) process.exit(1);
    stopping = true;
    console.log(`${signal}: stopping (again to force)…`);
    await app.stop();
    process.exit(0);
  };
  process.on('SIGINT', () => void shutdown('SIGINT'));
  process.on('SIGTERM', () => void shutdown('SIGTERM'));
}

main().catch((error) => {
  if (error instanceof ConfigError) console.error(`Configuration error: ${error.message}`);
  else console.error(error instanceof Error ? error.message : error);
  process.exit(1);
});
