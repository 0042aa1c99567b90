import { render } from 'preact';
import { App } from './app.tsx';
import './styles.css';

// darkroom serves the UI at its root, or under a proxy's sub-path: the API is next to the page.
const baseUrl = new URL('.', location.href).href.replace(/\/$/, '');

render(<App baseUrl={baseUrl} />, document.getElementById('app') as HTMLElement);
