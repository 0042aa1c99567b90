/**
 * What the UI remembers in this browser (localStorage): the API key and the chosen theme. Reads and
 * writes never throw: storage can be disabled (private modes, policies), and the UI then simply
 * forgets at reload.
 */
const API_KEY = 'darkroom.apiKey';
/** Also read by the inline script in index.html, which applies the theme before the first paint. */
const THEME = 'darkroom.theme';

export type Theme = 'light' | 'dark';

function read(name: string): string | undefined {
  try {
    return localStorage.getItem(name) ?? undefined;
  } catch {
    return undefined;
  }
}

function write(name: string, value: string | undefined): void {
  try {
    if (value === undefined) localStorage.removeItem(name);
    else localStorage.setItem(name, value);
  } catch {
    // Not remembered; it still applies until the page is closed.
  }
}

export const loadApiKey = (): string | undefined => read(API_KEY) || undefined;
export const saveApiKey = (key: string | undefined): void => write(API_KEY, key || undefined);

/** The theme chosen with the toggle, or undefined when following the system's preference. */
export function loadTheme(): Theme | undefined {
  const stored = read(THEME);
  return stored === 'light' || stored === 'dark' ? stored : undefined;
}

export const saveTheme = (theme: Theme): void => write(THEME, theme);
