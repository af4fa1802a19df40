// Debian's Chromium as the browser tests launch it: headless, no sandbox (root in CI), nothing that
// reaches for the network on its own.
import { chromium, type BrowserContext } from 'playwright-core';

/** A persistent context in `profile` (a fresh folder the caller removes). */
export function launchChromium(
  profile: string,
  viewport: { width: number; height: number },
): Promise<BrowserContext> {
  return chromium.launchPersistentContext(profile, {
    executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
    headless: true,
    viewport,
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
