// Sign in with an API token. It is checked against the API, then kept in this tab's session storage only.
import { useEffect, useRef, useState } from 'preact/hooks';
import { FormError } from '../components/states';
import { useTitle } from '../lib/title';

export function SignInPage({ message, onSignIn }: { message: string | null; onSignIn(token: string): Promise<void> }) {
  useTitle('Sign in');
  const [token, setToken] = useState('');
  const [error, setError] = useState<string | null>(message);
  const [busy, setBusy] = useState(false);
  const input = useRef<HTMLInputElement>(null);
  useEffect(() => input.current?.focus(), []);

  const submit = async (event: Event) => {
    event.preventDefault();
    const value = token.trim();
    if (!value) {
      setError('Enter a token.');
      return;
    }
    setBusy(true);
    setError(null);
    try {
      await onSignIn(value);
    } catch (e) {
      setError((e as Error).message);
      setBusy(false);
      input.current?.select();
    }
  };

  return (
    <main id="main" class="sign-in">
      <form class="card sign-in-form" onSubmit={submit} aria-labelledby="sign-in-title" noValidate>
        <h1 id="sign-in-title">
          <span class="brand-mark" aria-hidden="true">
            ◆
          </span>{' '}
          Atelier
        </h1>
        <p class="muted">Sign in with an API token to see runs, workflows and modules.</p>
        <label for="token">Token</label>
        <input
          id="token"
          ref={input}
          type="password"
          autocomplete="off"
          spellcheck={false}
          placeholder="atl_…"
          value={token}
          aria-invalid={error ? 'true' : undefined}
          aria-describedby={error ? 'token-error token-help' : 'token-help'}
          onInput={(e) => setToken(e.currentTarget.value)}
        />
        <p id="token-help" class="hint">
          <code>npm start</code> prints the admin token; it is also in <code>.atelier/admin-token</code>. The token is kept in this browser, for its other tabs
          too (Sign out removes it from all of them), and is never put in a URL.
        </p>
        <FormError id="token-error" message={error} />
        <button type="submit" class="button primary" disabled={busy}>
          {busy ? 'Signing in…' : 'Sign in'}
        </button>
      </form>
    </main>
  );
}
