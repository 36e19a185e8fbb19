// Loads a page's code on first use (the run page brings the graph layout and chart libraries). Code of a build that
// is gone reloads the page onto the build in use (lib/new-build.ts): meanwhile the page shows it is loading.
import type { ComponentType } from 'preact';
import { useEffect, useState } from 'preact/hooks';
import { reloadingForNewBuild } from '../lib/new-build';
import { ErrorState, Loading } from './states';

export function lazyPage<P extends object>(load: () => Promise<{ default: ComponentType<P> }>): ComponentType<P> {
  let loaded: ComponentType<P> | null = null;
  let loading: Promise<ComponentType<P>> | null = null;
  return function LazyPage(props: P) {
    const [, setReady] = useState(false);
    const [error, setError] = useState<Error | null>(null);
    useEffect(() => {
      if (loaded) return;
      let current = true;
      loading ??= load().then((m) => (loaded = m.default));
      loading.then(
        () => current && setReady(true),
        (e: Error) => {
          loading = null;
          if (current) setError(e);
        },
      );
      return () => void (current = false);
    }, []);
    if (error && !reloadingForNewBuild()) return <ErrorState title="This page could not be loaded" error={error} retry={() => location.reload()} />;
    if (!loaded) return <Loading />;
    const Page = loaded;
    return <Page {...props} />;
  };
}
