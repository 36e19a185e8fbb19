// Entry: mounts the app. Styles are global and small; pages are plain components.
import { render } from 'preact';
import { App } from './app';
import './styles.css';

render(<App />, document.getElementById('app')!);
