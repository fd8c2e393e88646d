import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import puppeteer, { type Browser, type Page } from 'puppeteer-core';

// Page-side callbacks run in the browser; the suite's tsconfig has no DOM lib, so name what they use.
declare const document: { querySelectorAll(s: string): Iterable<{ textContent: string | null }> };
interface PageEl {
  getBoundingClientRect(): { width: number; height: number; top: number; left: number; bottom: number; right: number };
  closest(s: string): PageEl | null;
  getAttribute(n: string): string | null;
  textContent: string | null;
  tagName: string;
}
declare const window: { innerWidth: number; innerHeight: number; getComputedStyle(el: PageEl): { visibility: string; display: string } };
declare const axe: {
  run(
    ctx: unknown,
    opts: unknown,
  ): Promise<{ violations: { id: string; impact: string | null; help: string; nodes: { target: unknown[] }[] }[] }>;
};

/** The two viewports every flow is run at: a phone (iPhone 12-15 size, touch) and a desktop window. */
export const PHONE = { width: 390, height: 844, isMobile: true, hasTouch: true, deviceScaleFactor: 1 };
export const DESKTOP = { width: 1200, height: 800 };

const root = path.resolve(import.meta.dirname, '..', '..');
/** Screenshots and console logs of failed browser tests (gitignored). */
export const artifactsDir = path.join(root, 'test-artifacts', 'browser');

/** Debian's chromium (installed by .ci/run); CHROMIUM_PATH overrides. Missing: the suite fails. */
export async function launchBrowser(): Promise<Browser> {
  const executablePath = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
  if (!existsSync(executablePath))
    throw new Error(`no chromium at ${executablePath}: install Debian's chromium (.ci/run does) or set CHROMIUM_PATH`);
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

/** A page in its own browser context (its own localStorage: one signed-in user each), at a phone's or a desktop's viewport. */
export async function openPage(
  browser: Browser,
  name: string,
  url: string,
  viewport: typeof PHONE | typeof DESKTOP = DESKTOP,
): Promise<TestPage> {
  const context = await browser.createBrowserContext();
  const page = await context.newPage();
  const logs: string[] = [];
  const stamp = () => new Date().toISOString().slice(11, 23);
  await page.setViewport(viewport);
  // The page has its own dialogs: a native alert, confirm or prompt freezes it (and its socket's heartbeat).
  page.on('dialog', (d) => {
    logs.push(`${stamp()} native dialog: ${d.type()} ${d.message()}`);
    void d.dismiss();
  });
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
    const dir = path.join(
      artifactsDir,
      test
        .replace(/[^a-z0-9]+/gi, '-')
        .toLowerCase()
        .slice(0, 80),
    );
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

/** Native dialogs (alert, confirm, prompt) the page opened: there should be none. */
export const nativeDialogs = (p: TestPage) => p.logs.filter((l) => l.includes('native dialog:'));

/**
 * Visible controls smaller than `min` px either way (WCAG 2.5.5's 44 px on phones): buttons,
 * links, text fields and selects, and the labels that wrap checkboxes (the label is the target).
 */
export async function smallTargets(p: TestPage, min = 44): Promise<string[]> {
  return p.page.$$eval(
    'button, a[href], input:not([type="checkbox"]):not([type="radio"]), select, textarea, label:has(> input[type="checkbox"])',
    (els, m) =>
      (els as unknown as PageEl[])
        .filter((el) => {
          const r = el.getBoundingClientRect();
          const st = window.getComputedStyle(el);
          // Hidden, or visually hidden for screen readers only (1 px), or off screen: not a target.
          return (
            r.width > 1 &&
            r.height > 1 &&
            st.visibility !== 'hidden' &&
            r.bottom > 0 &&
            r.top < window.innerHeight &&
            r.right > 0 &&
            r.left < window.innerWidth
          );
        })
        .filter((el) => {
          const r = el.getBoundingClientRect();
          return r.width < m - 0.5 || r.height < m - 0.5;
        })
        .map((el) => {
          const r = el.getBoundingClientRect();
          return `${el.tagName.toLowerCase()}[${el.getAttribute('data-testid') ?? el.getAttribute('aria-label') ?? (el.textContent ?? '').trim().slice(0, 20)}] ${Math.round(r.width)}x${Math.round(r.height)}`;
        }),
    min,
  );
}

const axePath = createRequire(import.meta.url).resolve('axe-core/axe.min.js');

export interface AuditResult {
  /** Violations by impact: minor, moderate, serious, critical. */
  counts: Record<string, number>;
  /** The serious and critical ones, with where they are. */
  serious: string[];
  all: string[];
}

/** An axe-core audit (WCAG 2.1 A and AA, and best practices) of the page as it is now. */
export async function audit(p: TestPage): Promise<AuditResult> {
  if (!(await p.page.evaluate(() => typeof (globalThis as { axe?: unknown }).axe === 'object')))
    await p.page.addScriptTag({ path: axePath });
  const r = await p.page.evaluate(() =>
    axe.run(document, {
      runOnly: { type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'best-practice'] },
      resultTypes: ['violations'],
    }),
  );
  const counts: Record<string, number> = { minor: 0, moderate: 0, serious: 0, critical: 0 };
  const describe = (v: (typeof r.violations)[number]) =>
    `${v.impact} ${v.id}: ${v.help} (${v.nodes.length}: ${v.nodes
      .slice(0, 3)
      .map((n) => JSON.stringify(n.target))
      .join(' ')})`;
  for (const v of r.violations) counts[v.impact ?? 'minor'] = (counts[v.impact ?? 'minor'] ?? 0) + v.nodes.length;
  return {
    counts,
    serious: r.violations.filter((v) => v.impact === 'serious' || v.impact === 'critical').map(describe),
    all: r.violations.map(describe),
  };
}
