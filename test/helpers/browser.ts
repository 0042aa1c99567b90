import { existsSync } from 'node:fs';
import { chromium, type Browser } from 'playwright-core';

/**
 * Browser tests drive the system's Chromium (Debian's `chromium` package) through playwright-core,
 * which never downloads a browser of its own. Without it they are skipped, saying so.
 */
export const CHROMIUM_PATH = '/usr/bin/chromium';

export const hasChromium = existsSync(CHROMIUM_PATH);

export const NO_CHROMIUM_MESSAGE = `browser tests skipped: ${CHROMIUM_PATH} is missing (on Debian: apt-get install chromium)`;

export function launchChromium(): Promise<Browser> {
  return chromium.launch({
    executablePath: CHROMIUM_PATH,
    // Quiet and self-contained: no sandbox (CI runs as root), no GPU, no calls home.
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
}
