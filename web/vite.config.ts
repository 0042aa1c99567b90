import { fileURLToPath } from 'node:url';
import preact from '@preact/preset-vite';
import { defineConfig } from 'vite';

const here = (path: string) => fileURLToPath(new URL(path, import.meta.url));

/**
 * The web UI: built into dist/web (gitignored) by `npm run build:ui`, which `prepare` and `pretest`
 * run, and served at `/` by the api process (src/api/http/web-ui.ts).
 */
export default defineConfig({
  root: here('.'),
  // Relative asset links, so the UI also works behind a proxy that mounts darkroom under a sub-path.
  base: './',
  plugins: [preact()],
  build: {
    outDir: here('../dist/web'),
    // The output directory is outside the Vite root, where Vite only empties it when told to.
    emptyOutDir: true,
  },
});
