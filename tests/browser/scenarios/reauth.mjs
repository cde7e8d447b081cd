// Re-authentication: once Ring rejects our tokens, the console shows the
// banner (with the server's reason) and links to the sign-in page.

import { check, waitFor } from "../harness.mjs";

export default async function reauth(ctx) {
  const page = await ctx.newPage();
  await page.goto(new URL("#/history", ctx.consoleUrl).href);
  await waitFor("events", () => page.locator("#hist-list .event").count().then((n) => n > 0), { timeout: 20000 });
  check(await page.locator("#banner").isHidden(), "no banner while signed in");

  const r = await ctx.simPost("tokens/revoke", {});
  check(r.status === 200, `revoke answered ${r.status}`);
  // Force a Ring call: Refresh reloads the history, Ring says 401, the
  // refresh token is rejected, the daemon answers 401.
  await page.click("#hist-refresh");
  await waitFor("the re-auth banner", () => page.locator("#banner").isVisible(), { timeout: 20000 });
  const text = await page.textContent("#banner");
  check(/sign in again/i.test(text) && /refresh token/i.test(text), `banner explains: ${text}`);
  check(/Sign-in needed/.test(await page.textContent("#auth-pill")), "pill says sign-in needed");
  check(/sign in/i.test(await page.textContent("#hist-state")), "the failed list points at signing in");
  await ctx.shot(page, "console-reauth-banner");

  await page.click("#banner-login");
  await waitFor("the sign-in page", () => page.locator("#view-login").isVisible());
  check(/ring-bridge auth/.test(await page.textContent("#view-login")), "sign-in page names the command");
  check(await page.locator("#banner").isVisible(), "banner stays on every page");
  await ctx.shot(page, "console-login");

  // A fresh page load learns the state from api/ring/auth alone.
  const fresh = await ctx.newPage();
  await fresh.goto(ctx.consoleUrl);
  await waitFor("banner on a fresh load", () => fresh.locator("#banner").isVisible());
  return { banner: text };
}
