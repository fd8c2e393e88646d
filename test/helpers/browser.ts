import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import puppeteer, { type Browser, type Page } from 'puppeteer-core';

// Page-side callbacks run in the browser; the suite's tsconfig has no DOM lib, so name what they use.
declare const document: { querySelectorAll(s: string): Iterable<{ textContent: string | null }> };

const root = path.resolve(import.meta.dirname, '..', '..');
/** Screenshots and console logs of failed browser tests (gitignored). */
export const artifactsDir = path.join(root, 'test-artifacts', 'browser');

/** Debian's chromium (installed by .ci/run); CHROMIUM_PATH overrides. Missing: the suite fails. */
export async function launchBrowser(): Promise<Browser> {
  const executablePath = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
  if (!existsSync(executablePath)) throw new Error(`no chromium at ${executablePath}: install Debian's chromium (.ci/run does) or set CHROMIUM_PATH`);
  return puppeteer.launch({
    executablePath,
    headless: true,
    // --no-sandbox: the suite runs as root in CI containers, where chromium's sandbox cannot start.
    args: ['--no-sandbox', '--disable-dev-shm-usage', '--disable-gpu', '--window-size=1200,800'],
    defaultViewport: { width: 1200, height: 800 },
  });
}

export interface TestPage {
  name: string;
  page: Page;
  /** Everything the page logged, its uncaught errors, and its failed requests. */
  logs: string[];
}

/** A page in its own browser context (its own localStorage: one signed-in user each). */
export async function openPage(browser: Browser, name: string, url: string): Promise<TestPage> {
  const context = await browser.createBrowserContext();
  const page = await context.newPage();
  const logs: string[] = [];
  const stamp = () => new Date().toISOString().slice(11, 23);
  page.on('console', (m) => logs.push(`${stamp()} console.${m.type()}: ${m.text()}`));
  page.on('pageerror', (e) => logs.push(`${stamp()} pageerror: ${e instanceof Error ? e.stack : String(e)}`));
  page.on('requestfailed', (r) => logs.push(`${stamp()} requestfailed: ${r.url()} ${r.failure()?.errorText ?? ''}`));
  page.setDefaultTimeout(20_000);
  await page.goto(url);
  return { name, page, logs };
}

/** Runs a test body; on failure saves each page's screenshot and console log, and prints where. */
export async function withArtifacts(test: string, pages: () => TestPage[], body: () => Promise<void>) {
  try {
    await body();
  } catch (err) {
    const dir = path.join(artifactsDir, test.replace(/[^a-z0-9]+/gi, '-').toLowerCase().slice(0, 80));
    mkdirSync(dir, { recursive: true });
    for (const p of pages()) {
      try {
        await p.page.screenshot({ path: path.join(dir, `${p.name}.png`) as `${string}.png`, fullPage: true });
      } catch {
        // the page may be gone
      }
      writeFileSync(path.join(dir, `${p.name}.console.log`), p.logs.join('\n') + '\n');
    }
    process.stderr.write(`browser test failed: screenshots and console logs in ${path.relative(root, dir)}\n`);
    throw err;
  }
}

/** A `data-testid` selector. */
export const sel = (id: string) => `[data-testid="${id}"]`;

/** Resolves when some element matching `selector` contains `text`. */
export function waitText(p: TestPage, selector: string, text: string, timeout = 20_000) {
  return p.page.waitForFunction(
    (s: string, t: string) => [...document.querySelectorAll(s)].some((e) => e.textContent?.includes(t)),
    { timeout },
    selector,
    text,
  );
}

/** The text of every element matching `selector`. */
export const texts = (p: TestPage, selector: string) => p.page.$$eval(selector, (els) => els.map((e) => e.textContent ?? ''));
