// Browser test harness: launches Debian's Chromium through playwright-core and
// gives scenarios bounded waits, assertions and screenshots.
//
// Every wait has a time-out; the browser is always closed (also on failure).
// Uncaught page errors fail the scenario: the console must not throw.

import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { chromium } from "playwright-core";

export const CHROMIUM = process.env.CHROMIUM_PATH || "/usr/bin/chromium";

export const CHROMIUM_ARGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--use-fake-device-for-media-stream",
  "--use-fake-ui-for-media-stream",
  "--disable-background-networking",
  "--autoplay-policy=no-user-gesture-required",
];

/** A failed expectation. */
export class CheckError extends Error {}

/** Throws CheckError(msg) unless `cond`. */
export function check(cond, msg) {
  if (!cond) throw new CheckError(msg);
}

/**
 * Polls `fn` (sync or async) until it returns a truthy value, at most
 * `timeout` ms; returns that value or throws with `what` and the last value.
 */
export async function waitFor(what, fn, { timeout = 15000, interval = 100 } = {}) {
  const end = Date.now() + timeout;
  let last;
  let lastErr;
  for (;;) {
    try {
      last = await fn();
      if (last) return last;
    } catch (e) {
      lastErr = e;
    }
    if (Date.now() > end) {
      const detail = lastErr ? ` (last error: ${lastErr.message})` : ` (last value: ${JSON.stringify(last)})`;
      throw new CheckError(`timed out after ${timeout} ms waiting for ${what}${detail}`);
    }
    await new Promise((r) => setTimeout(r, interval));
  }
}

export function log(...args) {
  console.log(`[browser-test ${new Date().toISOString().slice(11, 23)}]`, ...args);
}

/**
 * The context a scenario gets: `consoleUrl`, `simUrl`, `artifacts` (dir), a
 * `browser`, `newPage()` (records page errors), `shot(page, name)` and
 * `simState()`.
 */
export async function makeContext(env) {
  const artifacts = env.ARTIFACTS_DIR || "target/artifacts";
  mkdirSync(artifacts, { recursive: true });
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: CHROMIUM_ARGS,
    timeout: 30000,
  });
  const pageErrors = [];
  const ctx = {
    consoleUrl: env.CONSOLE_URL,
    simUrl: env.SIM_URL,
    artifacts,
    browser,
    pageErrors,
    async newPage({ width = 1360, height = 860, colorScheme = "light" } = {}) {
      const context = await browser.newContext({ viewport: { width, height }, colorScheme });
      await context.grantPermissions(["microphone", "clipboard-read", "clipboard-write"]).catch(() => {});
      const page = await context.newPage();
      page.setDefaultTimeout(15000);
      page.on("pageerror", (e) => {
        pageErrors.push(String(e && e.stack ? e.stack : e));
        log("PAGE ERROR", String(e));
      });
      page.on("console", (m) => {
        if (m.type() === "error" || m.type() === "warning") log(`page console.${m.type()}:`, m.text());
      });
      return page;
    },
    async shot(page, name) {
      const path = join(artifacts, `${name}.png`);
      await page.screenshot({ path, fullPage: false });
      log("screenshot", path);
      return path;
    },
    async simState() {
      const r = await fetch(new URL("_sim/state", env.SIM_URL), { signal: AbortSignal.timeout(5000) });
      return r.json();
    },
    async simPost(path, body = {}) {
      const r = await fetch(new URL(`_sim/${path}`, env.SIM_URL), {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify(body),
        signal: AbortSignal.timeout(5000),
      });
      return { status: r.status, body: await r.text() };
    },
    async api(path) {
      const r = await fetch(new URL(path, env.CONSOLE_URL), { signal: AbortSignal.timeout(10000) });
      return { status: r.status, body: await r.json().catch(() => null) };
    },
  };
  return ctx;
}
