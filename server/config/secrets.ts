// The secrets a person chooses and gives the server (the admin's bearer token, the git hook's HMAC secret): each has a
// minimum length, refused at start with how to make a good one, as online guessing is slowed, not stopped.
import { ConfigError } from './parse';

/** Shortest ATELIER_ADMIN_TOKEN taken: a person chose it, and guessing online is slowed (server/auth/token-failures.ts), not stopped. */
export const MIN_ADMIN_TOKEN_LENGTH = 24;

/**
 * Shortest ATELIER_GIT_HOOK_SECRET taken: a person chose it, and a signed hook's HMAC is checked without a limit on
 * tries (signed bodies are only capped in flight), so only its length keeps guessing it online out of reach.
 */
export const MIN_GIT_HOOK_SECRET_LENGTH = 24;

export function gitHookSecretOf(value: string | undefined): string | undefined {
  if (!value) return undefined;
  if (value.length < MIN_GIT_HOOK_SECRET_LENGTH)
    throw new ConfigError(
      `ATELIER_GIT_HOOK_SECRET must be at least ${MIN_GIT_HOOK_SECRET_LENGTH} characters (got ${value.length}; signatures under a short one can be forged by guessing it): make one with \`openssl rand -hex 32\` and give the same to your git host's webhook.`,
    );
  return value;
}

export function adminTokenOf(value: string | undefined): string | undefined {
  if (!value) return undefined;
  if (value.length < MIN_ADMIN_TOKEN_LENGTH || /\s/.test(value))
    throw new ConfigError(
      `ATELIER_ADMIN_TOKEN must be at least ${MIN_ADMIN_TOKEN_LENGTH} characters with no spaces (it is the admin's bearer token, and a short one can be guessed online): make one with \`openssl rand -base64 32\`, or leave it unset to have one minted.`,
    );
  return value;
}
