// The signed-in token lives in this tab's sessionStorage only: it is sent as a header and in the graphql-ws
// connection params, never put in a URL, and is gone when the tab closes.
const KEY = 'atelier-token';

export const readToken = (): string | null => {
  try {
    return sessionStorage.getItem(KEY);
  } catch {
    return null; // storage disabled: the user signs in again per page load
  }
};

export const saveToken = (token: string) => {
  try {
    sessionStorage.setItem(KEY, token);
  } catch {
    // keep it in memory only
  }
};

export const clearToken = () => {
  try {
    sessionStorage.removeItem(KEY);
  } catch {
    // nothing stored
  }
};

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
