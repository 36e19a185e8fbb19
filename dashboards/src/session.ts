// The signed-in session as the pages see it: who is signed in, the API client, and signing out.
import { createContext } from 'preact';
import { useContext } from 'preact/hooks';
import type { Api } from './api/client';

export interface Session {
  viewer: { name: string; role: string };
  api: Api;
  signOut(message?: string): void;
}

export const SessionContext = createContext<Session | null>(null);

export function useSession(): Session {
  const session = useContext(SessionContext);
  if (!session) throw new Error('useSession outside a signed-in session');
  return session;
}
