// Entry: mounts the app. Styles are global and small; pages are plain components.
import { render } from 'preact';
import { App } from './app';
import { reloadOnMissingChunks } from './lib/new-build';
import './styles.css';

reloadOnMissingChunks();
render(<App />, document.getElementById('app')!);
