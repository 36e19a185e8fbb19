// Recording where module content came from, without the credentials a remote URL may carry.

export function withoutCredentials(url: string): string {
  try {
    const u = new URL(url);
    u.username = '';
    u.password = '';
    return u.toString();
  } catch {
    return url; // scp-like `git@host:org/repo.git` has no password to strip
  }
}
