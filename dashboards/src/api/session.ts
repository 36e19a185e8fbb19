// The signed-in token lives in this origin's localStorage, so a link opened in a new tab (or shared with oneself)
// opens signed in: it is sent as a header and in the graphql-ws connection params, never put in a URL, and signing
// out (in any tab) removes it everywhere (`onTokenRemoved`).
const KEY = 'atelier-token';

export const readToken = (): string | null => {
  try {
    return localStorage.getItem(KEY);
  } catch {
    return null; // storage disabled: the user signs in again per page load
  }
};

export const saveToken = (token: string) => {
  try {
    localStorage.setItem(KEY, token);
  } catch {
    // keep it in memory only
  }
};

export const clearToken = () => {
  try {
    localStorage.removeItem(KEY);
  } catch {
    // nothing stored
  }
};

/** Calls `signedOut` when another tab of this origin signs out (removes the token); returns the unsubscribe. */
export function onTokenRemoved(signedOut: () => void): () => void {
  const listener = (event: StorageEvent) => {
    if ((event.key === KEY || event.key === null) && !readToken()) signedOut();
  };
  window.addEventListener('storage', listener);
  return () => window.removeEventListener('storage', listener);
}

/** Asks the API who the token belongs to; throws with a readable message when it is refused. */
export async function checkToken(token: string): Promise<{ name: string; role: string }> {
  let res: Response;
  try {
    res = await fetch('/graphql', {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'application/graphql-response+json, application/json', authorization: `Bearer ${token}` },
      body: JSON.stringify({ query: '{ viewer { name role } }' }),
    });
  } catch {
    throw new Error('The control plane cannot be reached. Is it running?');
  }
  const body = (await res.json().catch(() => null)) as { data?: { viewer: { name: string; role: string } }; errors?: { message: string }[] } | null;
  if (body?.data?.viewer) return body.data.viewer;
  throw new Error(body?.errors?.[0]?.message ?? `The control plane answered ${res.status}.`);
}
