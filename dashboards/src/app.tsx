// The app shell: sign-in gate, navigation, the live-connection indicator and the routes.

import { Provider } from '@urql/preact';
import { Component, type ComponentChildren } from 'preact';
import { useEffect, useRef, useState } from 'preact/hooks';
import { createApi, type LiveState } from './api/client';
import { checkToken, clearToken, onTokenRemoved, readToken, saveToken } from './api/session';
import { lazyPage } from './components/lazy';
import { ErrorState, Loading } from './components/states';
import { AlertsPage } from './pages/alerts';
import { AuditPage } from './pages/audit';
import { CostsPage } from './pages/costs';
import { DatasetsPage } from './pages/datasets';
import { DeploymentsPage } from './pages/deployments';
import { ExecutorsPage } from './pages/executors';
import { ExperimentsPage } from './pages/experiments';
import { ModelsPage } from './pages/models';
import { ModulePage } from './pages/module';
import { ModulesPage } from './pages/modules';
import { MonitorsPage } from './pages/monitors';
import { NotFoundPage } from './pages/not-found';
import { RunsPage } from './pages/runs';
import { SavingsPage } from './pages/savings';
import { SchedulesPage } from './pages/schedules';
import { SignInPage } from './pages/sign-in';
import { TaskPage } from './pages/task';
import { WebhooksPage } from './pages/webhooks';
import { WorkflowsPage } from './pages/workflows';
import { Link, navigate, useLocation } from './router';
import { type Session, SessionContext } from './session';

const RunPage = lazyPage(() => import('./pages/run'));
const WorkflowPage = lazyPage(() => import('./pages/workflow'));
const DatasetPage = lazyPage(() => import('./pages/dataset'));
const ComparePage = lazyPage(() => import('./pages/compare'));
const ModelPage = lazyPage(() => import('./pages/model'));
const MonitorPage = lazyPage(() => import('./pages/monitors-detail'));
const DeploymentPage = lazyPage(() => import('./pages/deployment'));

const nav = [
  { href: '/runs', label: 'Runs' },
  { href: '/experiments', label: 'Experiments' },
  { href: '/workflows', label: 'Workflows' },
  { href: '/modules', label: 'Modules' },
  { href: '/models', label: 'Models' },
  { href: '/deployments', label: 'Deployments' },
  { href: '/schedules', label: 'Schedules' },
  { href: '/datasets', label: 'Datasets' },
  { href: '/monitors', label: 'Monitors' },
  { href: '/alerts', label: 'Alerts' },
  { href: '/executors', label: 'Executors' },
  { href: '/savings', label: 'Savings' },
  { href: '/costs', label: 'Costs' },
  // the API refuses the audit log to anyone else; the page says so to whoever opens its address anyway
  { href: '/audit', label: 'Audit', adminOnly: true },
];

function route(path: string): ComponentChildren {
  let m: RegExpExecArray | null;
  if (path === '/' || path === '/runs') return <RunsPage />;
  if ((m = /^\/runs\/([^/]+)$/.exec(path))) return <RunPage id={decodeURIComponent(m[1]!)} />;
  if ((m = /^\/tasks\/([^/]+)$/.exec(path))) return <TaskPage id={decodeURIComponent(m[1]!)} />;
  if (path === '/compare') return <ComparePage />;
  if (path === '/workflows') return <WorkflowsPage />;
  if ((m = /^\/workflows\/([^/]+)$/.exec(path))) return <WorkflowPage name={decodeURIComponent(m[1]!)} />;
  if (path === '/modules') return <ModulesPage />;
  if (path === '/models') return <ModelsPage />;
  if ((m = /^\/models\/([^/]+)\/([^/]+)$/.exec(path))) return <ModelPage fullName={`${decodeURIComponent(m[1]!)}/${decodeURIComponent(m[2]!)}`} />;
  if (path === '/deployments') return <DeploymentsPage />;
  if ((m = /^\/deployments\/([^/]+)$/.exec(path))) return <DeploymentPage key={m[1]} name={decodeURIComponent(m[1]!)} />;
  if (path === '/schedules') return <SchedulesPage />;
  if (path === '/experiments') return <ExperimentsPage />;
  if ((m = /^\/modules\/([^/]+)\/([^/]+)$/.exec(path))) return <ModulePage fullName={`${decodeURIComponent(m[1]!)}/${decodeURIComponent(m[2]!)}`} />;
  if (path === '/datasets') return <DatasetsPage />;
  if ((m = /^\/datasets\/([^/]+)\/([^/]+)$/.exec(path))) return <DatasetPage fullName={`${decodeURIComponent(m[1]!)}/${decodeURIComponent(m[2]!)}`} />;
  if (path === '/monitors') return <MonitorsPage />;
  if ((m = /^\/monitors\/([^/]+)$/.exec(path))) return <MonitorPage id={decodeURIComponent(m[1]!)} />;
  if (path === '/alerts') return <AlertsPage />;
  if (path === '/webhooks') return <WebhooksPage />;
  if (path === '/audit') return <AuditPage />;
  if (path === '/executors') return <ExecutorsPage />;
  if (path === '/savings') return <SavingsPage />;
  if (path === '/costs') return <CostsPage />;
  return <NotFoundPage />;
}

export function App() {
  const [session, setSession] = useState<Session | null>(null);
  const [restoring, setRestoring] = useState(() => Boolean(readToken()));
  const [signInMessage, setSignInMessage] = useState<string | null>(null);

  const start = (token: string, viewer: Session['viewer']) => {
    let ended = false;
    const signOut = (message?: string) => {
      if (ended) return;
      ended = true;
      clearToken();
      api.dispose();
      setSession(null);
      setSignInMessage(message ?? null);
    };
    const api = createApi(token, (message) => signOut(message));
    setSession({ viewer, api, signOut });
  };

  useEffect(() => {
    const token = readToken();
    if (!token) return;
    checkToken(token)
      .then((viewer) => start(token, viewer))
      .catch((error: Error) => {
        clearToken();
        setSignInMessage(error.message);
      })
      .finally(() => setRestoring(false));
  }, []);

  // signed out in another tab: this one follows
  useEffect(() => (session ? onTokenRemoved(() => session.signOut('You signed out in another tab.')) : undefined), [session]);

  if (restoring) return <Loading label="Signing in…" />;
  if (!session) {
    return (
      <SignInPage
        message={signInMessage}
        onSignIn={async (token) => {
          const viewer = await checkToken(token);
          saveToken(token);
          setSignInMessage(null);
          start(token, viewer);
        }}
      />
    );
  }
  return (
    <SessionContext.Provider value={session}>
      <Provider value={session.api.client}>
        <Shell session={session} />
      </Provider>
    </SessionContext.Provider>
  );
}

function Shell({ session }: { session: Session }) {
  const { path } = useLocation();
  const main = useRef<HTMLElement>(null);
  const live = useLiveState(session);
  const previousPath = useRef(path);

  useEffect(() => {
    if (path === '/') navigate('/runs', { replace: true });
  }, [path]);
  useEffect(() => {
    // a new page: start at its top and move focus there, as a full page load would
    if (previousPath.current === path) return;
    previousPath.current = path;
    window.scrollTo(0, 0);
    main.current?.focus({ preventScroll: true });
  }, [path]);

  return (
    <>
      <a class="skip-link" href="#main">
        Skip to content
      </a>
      <header class="topbar">
        <Link class="brand" href="/runs">
          Atelier
        </Link>
        <nav aria-label="Main">
          <ul>
            {nav
              .filter((item) => !item.adminOnly || session.viewer.role === 'admin')
              .map((item) => (
                <li key={item.href}>
                  <Link href={item.href} aria-current={path === item.href || path.startsWith(`${item.href}/`) ? 'page' : undefined}>
                    {item.label}
                  </Link>
                </li>
              ))}
          </ul>
        </nav>
        <span class={`live live-${live}`} role="status" title={liveTitle[live]}>
          {live === 'idle' ? null : (
            <>
              <span aria-hidden="true">●</span> <span class="live-label">{liveLabel[live]}</span>
            </>
          )}
        </span>
        <span class="who">
          {session.viewer.name} <span class="muted">({session.viewer.role})</span>
        </span>
        <button type="button" class="button subtle" onClick={() => session.signOut()}>
          Sign out
        </button>
      </header>
      <main id="main" ref={main} tabIndex={-1}>
        <ErrorBoundary key={path}>{route(path)}</ErrorBoundary>
      </main>
    </>
  );
}

const liveLabel: Record<LiveState, string> = { idle: '', connecting: 'Connecting…', live: 'Live', offline: 'Offline' };
const liveTitle: Record<LiveState, string> = {
  idle: 'No live updates needed on this page',
  connecting: 'Live updates are (re)connecting',
  live: 'Receiving live updates',
  offline: 'Live updates are off',
};

function useLiveState(session: Session): LiveState {
  const [state, setState] = useState<LiveState>(session.api.liveState());
  useEffect(() => session.api.onLiveState(setState), [session]);
  return state;
}

class ErrorBoundary extends Component<{ children: ComponentChildren }, { error: Error | null }> {
  override state = { error: null as Error | null };
  override componentDidCatch(error: Error) {
    this.setState({ error });
  }
  override render() {
    if (this.state.error) return <ErrorState title="This page failed" error={this.state.error} retry={() => this.setState({ error: null })} />;
    return this.props.children;
  }
}
