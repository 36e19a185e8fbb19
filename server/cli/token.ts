// `atelier token revoke TOKEN`: revokes one token by its text (a leaked one, the old one once a rotation ends), any
// identity's, the admin's too; `atelier service-account revoke` revokes all of an account's.
import { Command } from 'commander';
import type { Client } from './client';

export function tokenCommand(connect: (command: Command) => Client): Command {
  const token = new Command('token').description('tokens by their text (admins)');
  token
    .command('revoke <token>')
    .description('revoke one token, any identity’s (the admin token too); its requests are refused at once, its live subscriptions end soon after')
    .action(async (text: string, _opts: unknown, cmd: Command) => {
      const { revokeToken } = await connect(cmd).request<{ revokeToken: boolean }>(`mutation ($t: String!) { revokeToken(token: $t) }`, { t: text.trim() });
      console.log(revokeToken ? 'revoked: requests with this token are refused from now on' : 'already revoked: nothing changed');
    });
  return token;
}
