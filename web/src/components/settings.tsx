import type { RefObject } from 'preact';
import { useEffect, useState } from 'preact/hooks';
import { loadTheme, saveTheme, type Theme } from '../preferences.ts';

interface SettingsProps {
  apiKey: string | undefined;
  onSave(key: string | undefined): void;
  open: boolean;
  onToggle(open: boolean): void;
  keyRef: RefObject<HTMLInputElement | null>;
}

/** The API key, kept in this browser and sent as a Bearer token to this darkroom's API only. */
export function Settings({ apiKey, onSave, open, onToggle, keyRef }: SettingsProps) {
  const [draft, setDraft] = useState(apiKey ?? '');
  const [saved, setSaved] = useState<string>();
  useEffect(() => setDraft(apiKey ?? ''), [apiKey]);

  return (
    <details class="settings" open={open} onToggle={(event) => onToggle(event.currentTarget.open)}>
      <summary>Settings</summary>
      <form
        class="settings-form"
        onSubmit={(event) => {
          event.preventDefault();
          const key = draft.trim() || undefined;
          onSave(key);
          setSaved(key ? 'Key saved.' : 'Key removed.');
        }}
      >
        <label for="api-key">API key</label>
        <input
          id="api-key"
          ref={keyRef}
          type="password"
          autocomplete="off"
          spellcheck={false}
          value={draft}
          aria-describedby="api-key-hint"
          onInput={(event) => {
            setDraft(event.currentTarget.value);
            setSaved(undefined);
          }}
        />
        <div class="form-row">
          <button type="submit">Save key</button>
          {apiKey ? (
            <button
              type="button"
              onClick={() => {
                setDraft('');
                onSave(undefined);
                setSaved('Key removed.');
              }}
            >
              Forget key
            </button>
          ) : null}
          <span role="status">{saved}</span>
        </div>
        <p id="api-key-hint" class="hint">
          Needed when this darkroom requires one. Kept in this browser only, and sent as <code>Authorization: Bearer</code> to its API.
        </p>
      </form>
    </details>
  );
}

const systemTheme = (): Theme => (matchMedia('(prefers-color-scheme: dark)').matches ? 'dark' : 'light');

/**
 * Light or dark: the system's preference until the toggle is used, then the choice, remembered.
 * The choice is applied as `data-theme` on <html> (also by index.html's inline script, before the
 * first paint); the stylesheet follows the system when there is none.
 */
export function ThemeToggle() {
  const [chosen, setChosen] = useState<Theme | undefined>(loadTheme);
  const [system, setSystem] = useState<Theme>(systemTheme);

  useEffect(() => {
    const query = matchMedia('(prefers-color-scheme: dark)');
    const listener = () => setSystem(systemTheme());
    query.addEventListener('change', listener);
    return () => query.removeEventListener('change', listener);
  }, []);

  const theme = chosen ?? system;
  return (
    <button
      type="button"
      class="theme-toggle"
      aria-pressed={theme === 'dark'}
      onClick={() => {
        const next: Theme = theme === 'dark' ? 'light' : 'dark';
        saveTheme(next);
        document.documentElement.dataset.theme = next;
        setChosen(next);
      }}
    >
      Dark theme
    </button>
  );
}
