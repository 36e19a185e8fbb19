// The connection options every command takes (--url, --token) and how a command reads them, plus what every command
// shares (a pointer to its --help after a mistake). Options are positional: each command matches its own options
// after its name, so a command's option named like a program's (`webhook update ID --url NEW`) is the command's,
// where the program's used to take it (sending the request, token and all, to the webhook's URL). `connection` turns
// them into a client for the command.
import { readFileSync } from 'node:fs';
import { type Command, Option } from 'commander';
import { type Client, createClient } from './client';
import { CLI_ENV, type CliConfig, DEFAULT_URL, readCliConfig } from './config';
import { controlPlaneUrl } from './options';

/** The options made here: only these are read as the connection's, never a command's own --url. */
const madeHere = new WeakSet<Option>();
const made = (option: Option) => {
  madeHere.add(option);
  return option;
};

const urlOption = () => made(new Option('--url <url>', 'control plane URL').argParser(controlPlaneUrl));
const tokenOption = (description = 'API token') => made(new Option('--token <token>', description));

/** The program's own, with their environment variables and defaults. */
export function addConnectionOptions(program: Command): Command {
  return program
    .addOption(urlOption().env(CLI_ENV.url).default(readCliConfig().url, `the URL \`npm start\` on this machine wrote to its data dir, else ${DEFAULT_URL}`))
    .addOption(tokenOption('API token (default: $ATELIER_DATA_DIR/admin-token when on the control plane machine)').env(CLI_ENV.token));
}

/**
 * Makes every command match its options after its own name and take --url and --token there too (hidden from its
 * help, unless it has an option of that name of its own), and point to its --help after a mistake.
 */
export function shareProgramOptions(program: Command): void {
  const visit = (command: Command): void => {
    command.showHelpAfterError('(add --help for usage)');
    if (command.commands.length) command.enablePositionalOptions();
    if (command !== program) {
      for (const option of [urlOption(), tokenOption()]) if (!command.options.some((o) => o.long === option.long)) command.addOption(option.hideHelp());
    }
    for (const sub of command.commands) visit(sub);
  };
  visit(program);
}

/** --url and --token as given to this command or the nearest command above it; else the program's defaults. */
export function connectionOptions(command: Command): { url: string; token?: string } {
  const value = (name: 'url' | 'token'): string | undefined => {
    for (let c: Command | null = command; c; c = c.parent) {
      const option = c.options.find((o) => madeHere.has(o) && o.attributeName() === name);
      const given = option ? (c.getOptionValue(name) as string | undefined) : undefined;
      if (given !== undefined) return given;
    }
    return undefined;
  };
  return { url: value('url') ?? DEFAULT_URL, token: value('token') };
}

/** --token, then ATELIER_TOKEN, then the admin token a control plane on this machine saved in its data dir. */
function resolveToken(flag: string | undefined, config: CliConfig = readCliConfig()): string | null {
  if (flag) return flag;
  if (config.token !== undefined) return config.token;
  try {
    return readFileSync(config.adminTokenFile, 'utf8').trim() || null;
  } catch {
    return null; // the server's UNAUTHENTICATED answer then says what to set
  }
}

export function connection(command: Command): { client: Client; url: string; token: string | null } {
  const opts = connectionOptions(command);
  const url = opts.url.replace(/\/+$/, '');
  const token = resolveToken(opts.token);
  return { client: createClient({ url, token }), url, token };
}
