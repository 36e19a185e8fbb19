// `atelier deployer new NAME`: writes a deployer skeleton (the plugin built with defineDeployer over an in-memory
// serving backend, its contract test and a README) that passes the deployer testkit as written, so an author starts
// from green and swaps in a real serving system.
import path from 'node:path';
import { repoRoot, writeScaffold } from './scaffold';

/** Writes the skeleton into `dir/NAME` (default: the repository's plugins/deployers/); returns the files written. */
export async function scaffoldDeployer(name: string, dir?: string): Promise<string[]> {
  return writeScaffold(
    { kind: 'deployer', name, dir, home: path.join(repoRoot, 'plugins', 'deployers'), examples: 'seldon or ray-serve' },
    (type, plugins) => ({
      'index.ts': indexTs(name, type, plugins),
      [`${name}.test.ts`]: testTs(name, type, plugins),
      'README.md': readme(name, type),
    }),
  );
}

const indexTs = (
  name: string,
  type: string,
  plugins: string,
) => `// The \`${name}\` deployer: makes a serving system match what the control plane asks (revisions, a traffic split)
// and reports what it sees. Scaffolded by \`npx atelier deployer new ${name}\`. \`createInMemoryBackend\` stands in for
// your system so the contract (${name}.test.ts) passes from the start: write a \`${type}Backend\` for the real API.
import {
  checkSplit,
  type Deployer,
  DeployerError,
  type DeploymentStatus,
  defineDeployer,
  normaliseSplit,
  type Revision,
  type TrafficSplit,
} from '${plugins}/deployer-sdk';

/** What the serving system holds for a deployment. All of it lives there, so a new deployer instance re-attaches. */
export interface ServedDeployment {
  id: string;
  name: string;
  /** The control plane's installation id it was applied with: \`list\` answers only that installation's. */
  installation?: string;
  url: string;
  revisions: { number: number; modelVersion: string; digest: string; server: string }[];
  split: TrafficSplit;
}

/** What the deployer needs from the serving system. */
export interface ${type}Backend {
  /** The deployment as the system holds it, or null. Cheap: \`status\` calls it. */
  get(id: string): Promise<ServedDeployment | null>;
  /** Records the deployment (its revisions and split); the split takes effect when this resolves. */
  put(deployment: ServedDeployment): Promise<void>;
  /** Starts a server for a revision; returns its name. */
  startServer(id: string, revision: Revision): Promise<string>;
  /** Stops a server; accepts one already gone. */
  stopServer(server: string): Promise<void>;
  /** Forgets the deployment. */
  remove(id: string): Promise<void>;
  /** Every deployment the system holds (or only those tagged with \`installation\`, where it can filter by a tag). */
  list(installation: string): Promise<ServedDeployment[]>;
}

export interface ${type}DeployerOptions {
  backend: ${type}Backend;
}

export function create${type}Deployer(options: ${type}DeployerOptions): Deployer {
  const { backend } = options;
  const refuse = (code: ConstructorParameters<typeof DeployerError>[0], message: string) => new DeployerError(code, message, '${name}');

  const describe = (d: ServedDeployment): DeploymentStatus => ({
    deploymentId: d.id,
    ready: Object.keys(d.split).length > 0,
    url: d.url,
    traffic: { ...d.split },
    message: Object.keys(d.split).length ? 'serving' : 'no revision has traffic yet',
    revisions: d.revisions.map((r) => ({ number: r.number, modelVersion: r.modelVersion, health: 'READY', restarts: 0, message: null })),
  });

  async function existing(id: string): Promise<ServedDeployment> {
    const d = await backend.get(id);
    if (!d) throw refuse('UNKNOWN_DEPLOYMENT', \`no deployment \${id} here: apply a revision to create it\`);
    return d;
  }

  async function route(id: string, split: TrafficSplit): Promise<DeploymentStatus> {
    const d = await existing(id);
    checkSplit(split, describe(d).revisions, '${name}');
    const next = { ...d, split: normaliseSplit(split) };
    await backend.put(next);
    return describe(next);
  }

  return defineDeployer({
    name: '${name}',

    async apply(deployment, revision) {
      if (!revision.serve?.command.length)
        throw refuse('NO_SERVE_ENTRYPOINT', \`model version \${revision.modelVersion.ref} has no serve entrypoint: register the version with one to deploy it\`);
      const d = (await backend.get(deployment.id)) ?? {
        id: deployment.id,
        name: deployment.name,
        installation: deployment.installation,
        url: \`memory://${name}/\${deployment.name}\`,
        revisions: [],
        split: {},
      };
      const held = d.revisions.find((r) => r.number === revision.number);
      if (held && held.digest !== revision.modelVersion.digest)
        throw refuse('REVISION_CONFLICT', \`revision \${revision.number} was applied with \${held.modelVersion}: give a new revision a new number\`);
      if (held) return describe(d);
      const server = await backend.startServer(deployment.id, revision);
      const revisions = [...d.revisions, { number: revision.number, modelVersion: revision.modelVersion.ref, digest: revision.modelVersion.digest, server }];
      const next = { ...d, revisions: revisions.sort((a, b) => a.number - b.number), split: d.revisions.length ? d.split : { [revision.number]: 100 } };
      await backend.put(next);
      return describe(next);
    },

    async status(id) {
      return describe(await existing(id));
    },

    setTraffic: route,

    rollback: (id, toRevision) => route(id, { [toRevision]: 100 }),

    async delete(id) {
      const d = await backend.get(id);
      if (!d) return;
      for (const r of d.revisions) await backend.stopServer(r.server);
      await backend.remove(id);
    },

    // What this control plane's installation holds, so it can stop a deployment its database no longer names (one made
    // after the backup it was restored from). Never another installation's: tag what you create, filter by the tag.
    async list(installation) {
      const held = await backend.list(installation);
      return held.filter((d) => d.installation === installation).map((d) => ({ id: d.id, name: d.name }));
    },
  });
}

/** A serving system in memory, for the contract test and as a model of the real one. */
export function createInMemoryBackend(): ${type}Backend & { running(): number } {
  const deployments = new Map<string, ServedDeployment>();
  const servers = new Set<string>();
  let started = 0;
  return {
    get: async (id) => structuredClone(deployments.get(id) ?? null),
    put: async (d) => {
      deployments.set(d.id, structuredClone(d));
    },
    startServer: async (id, revision) => {
      const server = \`\${id}-r\${revision.number}-\${++started}\`;
      servers.add(server);
      return server;
    },
    stopServer: async (server) => {
      servers.delete(server);
    },
    remove: async (id) => {
      deployments.delete(id);
    },
    list: async () => structuredClone([...deployments.values()]),
    running: () => servers.size,
  };
}
`;

const testTs = (
  name: string,
  type: string,
  plugins: string,
) => `// The deployer contract (plugins/deployer-testkit.ts) for \`${name}\`, against the in-memory backend. When you write
// the real backend, run the same contract against a stand-in of its API (see test/stand-ins/).
import { deployerContract } from '${plugins}/deployer-testkit';
import { createInMemoryBackend, create${type}Deployer } from './index';

deployerContract('${name}', () => {
  const backend = createInMemoryBackend();
  return {
    deployer: create${type}Deployer({ backend }),
    // A restarted control plane builds a new deployer over the same serving system.
    restartedDeployer: () => create${type}Deployer({ backend }),
    revision: (n) => ({
      number: n,
      modelVersion: { ref: \`demo/iris/\${n}\`, digest: \`sha256:demo-\${n}\`, files: '.' },
      serve: { command: ['python3', 'serve.py'] },
    }),
    running: () => backend.running(),
  };
});
`;

const readme = (name: string, type: string) => `# \`${name}\` deployer

Scaffolded by \`npx atelier deployer new ${name}\`. It already passes the deployer contract against an in-memory
serving backend:

    npx vitest run ${name}.test.ts

Next steps:

1. Write a \`${type}Backend\` for your serving system: \`startServer\` for a revision's model version, \`put\` that
   makes a split take effect before it resolves, a cheap \`get\` (\`status\` calls it), \`stopServer\` that accepts a
   server already gone. Keep everything in the system itself, so a restarted control plane re-attaches.
2. Report real health per revision (STARTING, READY, RESTARTING, FAILED with a message) from what the system says.
3. Tag what you create with the deployment's \`installation\` (a label, a field of the system's record) and make
   \`list\` answer only what carries the one asked for: the control plane stops what its database does not name, so an
   untagged \`list\` would stop another control plane's deployments. Without a way to list, remove \`list\`: the control
   plane then says it cannot clean up after this deployer.
4. If your URLs answer, give the contract a \`request\` (a prediction) and have your router set the
   \`x-atelier-revision\` response header: the contract then counts the split over real requests.
`;
