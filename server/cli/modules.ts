// `atelier module …`, `atelier team …`, `atelier namespace …`, `atelier user create` and `atelier service-account …`:
// publishing, the dev loop, promotion and rollback, who owns which namespace and who may work in which domain.
import { Argument, Command, Option } from 'commander';
import { domains, type ModuleTestResult, teamRoles } from '../vocabulary';
import type { Client } from './client';
import { CliError } from './errors';
import { collect, commaList, parseParam, positiveInt } from './options';
import { withoutShownStderr } from './watch-view';

type Connect = (command: Command) => Client;
/** Follows a run until it ends, setting the exit status. */
type Follow = (client: Client, runId: string, options: { logs?: boolean; plain?: boolean }) => Promise<void>;

interface VersionView {
  version: string;
  digest: string;
  createdAt: string;
  tags: string[];
  deprecated: boolean;
  deprecationReason: string | null;
  publishedBy: { name: string } | null;
  source: { commit?: string; branch?: string; dirty?: boolean };
  testResult: { passed: boolean; durationMs: number } | null;
  usage: { runs: number };
}

interface TagEventView {
  tag: string;
  action: string;
  from: { version: string } | null;
  to: { version: string };
  movedBy: { name: string } | null;
  reason: string | null;
  at: string;
}

export function moduleCommand(connect: Connect, follow: Follow): Command {
  const command = new Command('module').description('publish, run locally, promote, roll back and inspect modules');

  command
    .command('push <dir>')
    .description('pack a module directory (with atelier.module.yaml) and publish it; moves `latestAlpha` unless --tag says otherwise')
    .option('-t, --tag <tag>', 'tag to move to this version (repeatable; default: latestAlpha, and latest for a first version)', collect)
    .option('--test', 'run the manifest’s test command first and record its result on the version; a failure moves no tag')
    .option('--run <workflow>', 'then start a run of this workflow using the pushed version wherever it uses this module')
    .option('-p, --param <key=value>', 'with --run: run parameter (repeatable)', parseParam)
    .option('-w, --watch', 'with --run: follow the run until it ends')
    .option('--force', 'move tags even onto a deprecated version')
    .action(
      async (
        dir: string,
        opts: { tag?: string[]; test?: boolean; run?: string; param?: Record<string, unknown>; watch?: boolean; force?: boolean },
        cmd: Command,
      ) => {
        const client = connect(cmd);
        const { describePush, pushModule } = await import('./push'); // archive and manifest code: only pushes need it
        let testResult: ModuleTestResult | undefined;
        if (opts.test) {
          const { runModuleTest } = await import('./module-dev');
          testResult = await runModuleTest(dir, { print: (chunk) => process.stderr.write(chunk) });
          console.log(
            `test ${testResult.passed ? 'passed' : `FAILED (exit ${testResult.exitCode ?? 'none'})`} in ${(testResult.durationMs / 1000).toFixed(1)} s: ${testResult.command}`,
          );
        }
        const pushed = await pushModule(client, dir, { tags: opts.tag ?? [], testResult, force: opts.force });
        console.log(describePush(pushed));
        if (testResult && !testResult.passed) {
          throw new CliError(`the test failed, so ${pushed.ref} is recorded with its failed result and no tag moved; fix it and push again`);
        }
        if (!opts.run) return;
        const { startRun } = await client.request<{ startRun: { id: string } }>(
          `mutation ($workflow: String!, $parameters: JSON, $use: [String!]) { startRun(workflow: $workflow, parameters: $parameters, trigger: CLI, useModules: $use) { id } }`,
          { workflow: opts.run, parameters: opts.param ?? {}, use: [pushed.ref] },
        );
        console.log(`started run ${startRun.id} of ${opts.run} with ${pushed.ref}`);
        if (opts.watch) await follow(client, startRun.id, {});
        else console.log(`follow it with: atelier run watch ${startRun.id}`);
      },
    );

  command
    .command('run <dir>')
    .description('run a module from its directory on the local executor, without publishing: same context and progress protocol as a real run')
    .option('-p, --param <key=value>', 'parameter (repeatable); the value is parsed as JSON when it can be', parseParam)
    .option('--inputs <json>', 'upstream outputs by node name, as a workflow would pass them, e.g. {"prepare":{"path":"/tmp/x"}}')
    .option('--timeout <seconds>', 'time limit (default: the manifest’s timeoutSeconds, else 1 h)', positiveInt)
    .action(async (dir: string, opts: { param?: Record<string, unknown>; inputs?: string; timeout?: number }) => {
      let inputs: Record<string, Record<string, unknown>> | undefined;
      if (opts.inputs) {
        try {
          inputs = JSON.parse(opts.inputs) as Record<string, Record<string, unknown>>;
        } catch (error) {
          throw new CliError(`--inputs is not JSON: ${(error as Error).message}`);
        }
      }
      const { runModuleDir } = await import('./module-dev');
      const abort = new AbortController();
      const onSigint = () => abort.abort();
      const stderrShown = new Set<string>();
      process.on('SIGINT', onSigint);
      try {
        const outcome = await runModuleDir(dir, {
          parameters: opts.param ?? {},
          inputs,
          timeoutSeconds: opts.timeout,
          print: (line) => {
            if (line.startsWith('! ')) stderrShown.add(line.slice(2)); // runModuleDir marks the module’s stderr lines with “! ”
            console.log(line);
          },
          signal: abort.signal,
        });
        const took = `${(outcome.durationMs / 1000).toFixed(2)} s`;
        if (outcome.outputs && Object.keys(outcome.outputs).length) console.log(`outputs: ${JSON.stringify(outcome.outputs)}`);
        const message = outcome.message && withoutShownStderr(outcome.message, stderrShown);
        console.log(`${outcome.state.toLowerCase().replace('_', ' ')} in ${took}${message ? `: ${message}` : ''}`);
        if (outcome.state !== 'SUCCEEDED') process.exitCode = 1;
      } finally {
        process.off('SIGINT', onSigint);
      }
    });

  command
    .command('list')
    .description('the module catalog: tags, owner and how many runs used each module')
    .option('--namespace <ns>', 'only this namespace')
    .option('--search <text>', 'part of a name or description')
    .action(async (opts: { namespace?: string; search?: string }, cmd: Command) => {
      const { modules } = await connect(cmd).request<{
        modules: {
          fullName: string;
          description: string;
          owner: { name: string } | null;
          usage: { runs: number };
          tags: { tag: string; version: { version: string } }[];
        }[];
      }>(
        `query ($ns: String, $search: String) { modules(namespace: $ns, search: $search) { fullName description owner { name } usage { runs } tags { tag version { version } } } }`,
        {
          ns: opts.namespace ?? null,
          search: opts.search ?? null,
        },
      );
      if (!modules.length) console.log('no modules: publish one with `atelier module push DIR`');
      for (const m of modules) {
        const tags = m.tags.map((t) => `${t.tag}→${t.version.version}`).join(' ');
        console.log(`${m.fullName}  ${tags}  team:${m.owner?.name ?? '(none)'}  runs:${m.usage.runs}${m.description ? `  ${m.description}` : ''}`);
      }
    });

  command
    .command('show <module>')
    .description('a module’s versions, tags and tag history')
    .option('--json', 'print as JSON')
    .action(async (name: string, opts: { json?: boolean }, cmd: Command) => {
      const { module } = await connect(cmd).request<{
        module: { fullName: string; description: string; owner: { name: string } | null; versions: VersionView[]; tagHistory: TagEventView[] } | null;
      }>(
        `query ($name: String!) { module(name: $name) { fullName description owner { name }
          versions(limit: 50) { version digest createdAt tags deprecated deprecationReason publishedBy { name } source testResult { passed durationMs } usage { runs } }
          tagHistory(limit: 20) { tag action from { version } to { version } movedBy { name } reason at } } }`,
        { name },
      );
      if (!module) throw new CliError(`no module ${name}; list them with \`atelier module list\``);
      if (opts.json) return console.log(JSON.stringify(module, null, 2));
      console.log(`${module.fullName}  (team: ${module.owner?.name ?? 'none'})${module.description ? `\n${module.description}` : ''}\n\nversions:`);
      for (const v of module.versions) {
        const notes = [
          v.tags.length ? `[${v.tags.join(', ')}]` : '',
          v.deprecated ? `DEPRECATED${v.deprecationReason ? ` (${v.deprecationReason})` : ''}` : '',
          v.testResult ? `test ${v.testResult.passed ? 'passed' : 'FAILED'}` : '',
          v.source.commit ? `${v.source.branch ?? ''}@${v.source.commit.slice(0, 8)}${v.source.dirty ? '+dirty' : ''}` : '',
          `runs:${v.usage.runs}`,
        ].filter(Boolean);
        console.log(`  ${v.version.padEnd(8)} ${v.digest.slice(7, 19)}  ${v.createdAt}  ${v.publishedBy?.name ?? '-'}  ${notes.join('  ')}`);
      }
      console.log('\ntag history (newest first):');
      for (const e of module.tagHistory) {
        console.log(
          `  ${e.at}  ${e.tag}: ${e.from?.version ?? '∅'} → ${e.to.version}  ${e.action === 'rollback' ? '(rollback) ' : ''}by ${e.movedBy?.name ?? '-'}${e.reason ? `: ${e.reason}` : ''}`,
        );
      }
    });

  command
    .command('tag <module> <tag> <version>')
    .description('promote: point a tag at a version (a version number or another tag), e.g. `module tag ml/train latest latestAlpha`')
    .option('--reason <text>', 'why, for the tag history')
    .option('--force', 'allow a deprecated version')
    .action(async (name: string, tag: string, version: string, opts: { reason?: string; force?: boolean }, cmd: Command) => {
      const { setModuleTag: r } = await connect(cmd).request<{ setModuleTag: TagMoveView }>(
        `mutation ($m: String!, $t: String!, $v: String!, $reason: String, $force: Boolean) { setModuleTag(module: $m, tag: $t, version: $v, reason: $reason, force: $force) { ${TAG_MOVE} } }`,
        { m: name, t: tag, v: version, reason: opts.reason ?? null, force: opts.force ?? null },
      );
      console.log(describeMove(r));
    });

  command
    .command('rollback <module> <tag>')
    .description('move a tag back to the version it pointed at before its last move (again: further back)')
    .option('--reason <text>', 'why, for the tag history')
    .option('--force', 'allow a deprecated version')
    .action(async (name: string, tag: string, opts: { reason?: string; force?: boolean }, cmd: Command) => {
      const { rollbackModuleTag: r } = await connect(cmd).request<{ rollbackModuleTag: TagMoveView }>(
        `mutation ($m: String!, $t: String!, $reason: String, $force: Boolean) { rollbackModuleTag(module: $m, tag: $t, reason: $reason, force: $force) { ${TAG_MOVE} } }`,
        { m: name, t: tag, reason: opts.reason ?? null, force: opts.force ?? null },
      );
      console.log(describeMove(r));
    });

  command
    .command('deprecate <ref>')
    .description('deprecate namespace/name@version: pinned runs keep working, no tag moves to it without --force')
    .option('--reason <text>', 'shown wherever the version is')
    .option('--undo', 'restore a deprecated version')
    .action(async (ref: string, opts: { reason?: string; undo?: boolean }, cmd: Command) => {
      const { deprecateModuleVersion: v } = await connect(cmd).request<{ deprecateModuleVersion: { ref: string; deprecated: boolean } }>(
        `mutation ($ref: String!, $reason: String, $d: Boolean) { deprecateModuleVersion(ref: $ref, reason: $reason, deprecated: $d) { ref deprecated } }`,
        { ref, reason: opts.reason ?? null, d: !opts.undo },
      );
      console.log(`${v.ref} ${v.deprecated ? 'is deprecated' : 'is no longer deprecated'}`);
    });
  return command;
}

interface TagMoveView {
  module: { fullName: string };
  tag: string;
  version: { version: string };
  previous: { version: string } | null;
}
const TAG_MOVE = 'module { fullName } tag version { version } previous { version }';
const describeMove = (r: TagMoveView) =>
  r.previous?.version === r.version.version
    ? `${r.module.fullName}@${r.tag} already points at ${r.version.version}`
    : `${r.module.fullName}@${r.tag}: ${r.previous?.version ?? '∅'} → ${r.version.version}`;

export function teamCommands(connect: Connect): Command[] {
  const team = new Command('team').description('teams, their members and the namespaces they own');
  team
    .command('create <name>')
    .description('create a team (admins); you become its admin')
    .option('--description <text>')
    .action(async (name: string, opts: { description?: string }, cmd: Command) => {
      await connect(cmd).request(`mutation ($n: String!, $d: String) { createTeam(name: $n, description: $d) { id } }`, {
        n: name,
        d: opts.description ?? null,
      });
      console.log(
        `created team ${name}; add people with \`atelier team add ${name} NAME\` and give it a namespace with \`atelier namespace create NS --team ${name}\``,
      );
    });
  team
    .command('add <team> <identity>')
    .description('add a user or service account to a team, or change its role')
    .addOption(new Option('--role <role>', 'their role in the team').choices(teamRoles).default('member'))
    .action(async (name: string, identity: string, opts: { role: string }, cmd: Command) => {
      await connect(cmd).request(`mutation ($t: String!, $i: String!, $r: TeamRole) { setTeamMember(team: $t, identity: $i, role: $r) { id } }`, {
        t: name,
        i: identity,
        r: opts.role,
      });
      console.log(`${identity} is now ${opts.role} of team ${name}`);
    });
  team
    .command('remove <team> <identity>')
    .description('remove a member from a team')
    .action(async (name: string, identity: string, _opts: unknown, cmd: Command) => {
      await connect(cmd).request(`mutation ($t: String!, $i: String!) { removeTeamMember(team: $t, identity: $i) { id } }`, { t: name, i: identity });
      console.log(`${identity} removed from team ${name}`);
    });
  team
    .command('list')
    .description('teams with their namespaces, domain grants and members')
    .action(async (_opts: unknown, cmd: Command) => {
      const { teams } = await connect(cmd).request<{
        teams: { name: string; namespaces: string[]; domains: string[]; members: { role: string; identity: { name: string } }[] }[];
      }>(`{ teams { name namespaces domains members { role identity { name } } } }`);
      if (!teams.length) console.log('no teams: an admin creates one with `atelier team create NAME`');
      for (const t of teams) {
        const grants = t.domains.length ? `  domains: ${t.domains.join(', ')}` : '';
        console.log(
          `${t.name}  namespaces: ${t.namespaces.join(', ') || '-'}${grants}  members: ${t.members.map((m) => `${m.identity.name}(${m.role})`).join(', ')}`,
        );
      }
    });
  const domainArgument = () => new Argument('<domain>', 'adhoc or production (experimentation needs no grant)').choices(domains);
  for (const [verb, granted, description] of [
    ['grant', true, 'let a team’s members start runs (and schedules, clones, reruns) in a domain beyond experimentation, and read their data (admins)'],
    ['revoke', false, 'take a domain grant back from a team (admins); applies to its members’ next request and their live subscriptions'],
  ] as const) {
    team
      .command(`${verb} <team>`)
      .addArgument(domainArgument())
      .description(description)
      .action(async (name: string, domain: string, _opts: unknown, cmd: Command) => {
        const { grantDomain } = await connect(cmd).request<{ grantDomain: { domains: string[] } }>(
          `mutation ($t: String!, $d: Domain!, $g: Boolean!) { grantDomain(team: $t, domain: $d, granted: $g) { domains } }`,
          { t: name, d: domain, g: granted },
        );
        console.log(
          `team ${name} may ${granted ? 'now' : 'no longer'} work in ${domain}; its domains: ${grantDomain.domains.join(', ') || 'experimentation only'}`,
        );
      });
  }

  const namespace = new Command('namespace').description('module namespaces and their owning teams');
  namespace
    .command('create <name>')
    .description('give a namespace to a team: claim an unowned one (team maintainers) or move one (admins)')
    .requiredOption('--team <team>', 'the owning team')
    .action(async (name: string, opts: { team: string }, cmd: Command) => {
      await connect(cmd).request(`mutation ($n: String!, $t: String!) { assignNamespace(namespace: $n, team: $t) { id } }`, { n: name, t: opts.team });
      console.log(`namespace ${name} belongs to team ${opts.team}: its members may publish there`);
    });

  const user = new Command('user').description('users (admins)');
  user
    .command('create <name>')
    .description('create a user and print their first token (shown once)')
    .addOption(new Option('--role <role>', 'their role').choices(['admin', 'member', 'viewer']).default('member'))
    .option('--expires-in-days <n>', 'the token expires after this many days (default: never)', positiveInt)
    .action(async (name: string, opts: { role: string; expiresInDays?: number }, cmd: Command) => {
      const { createUser } = await connect(cmd).request<{ createUser: { token: string } }>(
        `mutation ($n: String!, $r: Role, $e: Int) { createUser(name: $n, role: $r, expiresInDays: $e) { token } }`,
        { n: name, r: opts.role, e: opts.expiresInDays ?? null },
      );
      console.log(createUser.token);
    });

  const serviceAccount = new Command('service-account').description('service accounts for CI and other services, and their tokens (admins)');
  const scopesOption = () =>
    new Option(
      '--scopes <action:Subject,…>',
      'limit the token to these scopes, e.g. read:Run,start:Run (publish:Module, read:*); default: everything the account may do',
    ).argParser(commaList);
  const printToken = (issued: IssuedTokenView) => {
    // The token alone on stdout, so `TOKEN=$(atelier service-account create ci)` works; the rest goes to stderr.
    console.log(issued.token);
    const limits = [
      issued.scopes ? `limited to ${issued.scopes.join(', ')}` : 'not limited by scopes',
      issued.expiresAt ? `expires ${issued.expiresAt}` : 'never expires',
    ];
    console.error(`token for ${issued.identity.name} (${issued.identity.role}), ${limits.join(', ')}; shown only now: store it in a secret store`);
  };
  serviceAccount
    .command('create <name>')
    .description('create a service account and print its first token (shown once)')
    .addOption(new Option('--role <role>', 'its role').choices(['admin', 'member', 'viewer']).default('member'))
    .addOption(scopesOption())
    .option('--expires-in-days <n>', 'the token expires after this many days (default: never)', positiveInt)
    .option('--owner <user>', 'the user it acts for (default: you); it never approves what its owner asked')
    .action(async (name: string, opts: { role: string; scopes?: string[]; expiresInDays?: number; owner?: string }, cmd: Command) => {
      const { createServiceAccount } = await connect(cmd).request<{ createServiceAccount: IssuedTokenView }>(
        `mutation ($n: String!, $r: Role, $e: Int, $s: [String!], $o: String) { createServiceAccount(name: $n, role: $r, expiresInDays: $e, scopes: $s, owner: $o) { ${ISSUED} } }`,
        { n: name, r: opts.role, e: opts.expiresInDays ?? null, s: opts.scopes ?? null, o: opts.owner ?? null },
      );
      printToken(createServiceAccount);
    });
  serviceAccount
    .command('token <name>')
    .description('issue another token for a service account, e.g. a narrower one with --scopes (shown once)')
    .addOption(scopesOption())
    .option('--expires-in-days <n>', 'the token expires after this many days (default: never)', positiveInt)
    .action(async (name: string, opts: { scopes?: string[]; expiresInDays?: number }, cmd: Command) => {
      const { issueServiceToken } = await connect(cmd).request<{ issueServiceToken: IssuedTokenView }>(
        `mutation ($n: String!, $e: Int, $s: [String!]) { issueServiceToken(name: $n, expiresInDays: $e, scopes: $s) { ${ISSUED} } }`,
        { n: name, e: opts.expiresInDays ?? null, s: opts.scopes ?? null },
      );
      printToken(issueServiceToken);
    });
  serviceAccount
    .command('revoke <name>')
    .description('revoke every live token of a service account; live connections using them end too')
    .action(async (name: string, _opts: unknown, cmd: Command) => {
      const { revokeServiceTokens: n } = await connect(cmd).request<{ revokeServiceTokens: number }>(
        `mutation ($n: String!) { revokeServiceTokens(name: $n) }`,
        { n: name },
      );
      console.log(`revoked ${n} token${n === 1 ? '' : 's'} of ${name}${n ? `; issue a new one with \`atelier service-account token ${name}\`` : ''}`);
    });
  return [team, namespace, user, serviceAccount];
}

interface IssuedTokenView {
  token: string;
  expiresAt: string | null;
  scopes: string[] | null;
  identity: { name: string; role: string };
}
const ISSUED = 'token expiresAt scopes identity { name role }';
