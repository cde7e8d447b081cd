// The sign-in page against the Ring simulator: the daemon starts logged into
// the simulator's demo account; the page shows it, unlinks it, then signs in
// again with a wrong password, the right one, the 2FA prompt, a wrong code and
// the right code, and the Live view lists the account's cameras.
//
// Credentials: the simulator's demo account (crate::sim::DEMO_EMAIL,
// DEMO_PASSWORD, DEMO_2FA_CODE).

import { check, waitFor, log } from "../harness.mjs";

const EMAIL = "demo@ring-bridge.local";
const PASSWORD = "demo-password";
const CODE = "123456";

async function errorText(page) {
  await waitFor("an inline error", () => page.locator("#login-error").isVisible());
  return page.textContent("#login-error");
}

export default async function login(ctx) {
  const page = await ctx.newPage();
  // The pill links to the sign-in page.
  await page.goto(ctx.consoleUrl);
  await waitFor("the account pill", async () => /Ring connected/.test(await page.textContent("#auth-pill")));
  await page.click("#auth-pill");
  await waitFor("the sign-in page", () => page.locator("#view-login").isVisible());
  await waitFor("the linked account", () => page.locator("#login-linked").isVisible(), { timeout: 20000 });
  const linked = await page.textContent("#login-account");
  check(linked.includes(EMAIL), `linked account shown: ${linked}`);
  check(await page.locator("#login-form").isHidden(), "no form while linked");
  check(/ring-bridge auth/.test(await page.textContent("#view-login")), "the CLI hint stays");
  await ctx.shot(page, "console-login-linked");

  // Unlink (with an inline confirmation).
  await page.click("#login-unlink");
  await page.click("#login-unlink-yes");
  await waitFor("the sign-in form after unlinking", () => page.locator("#login-form").isVisible(), { timeout: 60000 });
  check(await page.locator("#login-linked").isHidden(), "no linked account after unlinking");
  await waitFor("pill asks for a sign-in", async () => /Sign-in needed/.test(await page.textContent("#auth-pill")));

  // Wrong password: inline error, still on the password step.
  await page.fill("#login-email", EMAIL);
  await page.fill("#login-password", "wrong-pass-5521");
  await page.click("#login-submit");
  const bad = await errorText(page);
  check(/email or password/i.test(bad), `wrong password explained: ${bad}`);
  check(await page.locator("#login-step-code").isHidden(), "no code step after a wrong password");
  check(await page.locator("#banner").isVisible(), "re-auth banner while unlinked");

  // Right password: the code prompt says where the code went.
  await page.fill("#login-password", PASSWORD);
  await page.click("#login-submit");
  await waitFor("the code prompt", () => page.locator("#login-step-code").isVisible());
  const msg = await page.textContent("#login-code-message");
  check(/\+1xxxxxx89/.test(msg), `code prompt names the phone: ${msg}`);
  check(await page.locator("#login-error").isHidden(), "the old error is cleared");
  check((await page.inputValue("#login-password")) === "", "the password field is cleared");
  await ctx.shot(page, "console-login-2fa");

  // Wrong code: inline error, still on the code step.
  await page.fill("#login-code", "918273");
  await page.click("#login-submit");
  const badCode = await errorText(page);
  check(/verification code/i.test(badCode), `wrong code explained: ${badCode}`);
  check(await page.locator("#login-step-code").isVisible(), "still on the code step");

  // Right code: linked, ring-bridge restarts, the page shows the account.
  await page.fill("#login-code", CODE);
  await page.click("#login-submit");
  await waitFor("the success message", () => page.locator("#login-success").isVisible(), { timeout: 60000 });
  const success = await page.textContent("#login-success");
  check(success.includes(EMAIL), `success names the account: ${success}`);
  check(await page.locator("#login-linked").isVisible(), "linked account shown");
  await waitFor("pill back to connected", async () => /Ring connected/.test(await page.textContent("#auth-pill")));
  await waitFor("banner gone", () => page.locator("#banner").isHidden());
  await ctx.shot(page, "console-login-success");

  // The bridge now lists the account's cameras.
  await page.click("#tab-live");
  await waitFor("6 camera rows", () => page.locator("#cam-list .cam").count().then((n) => n === 6), { timeout: 30000 });
  const cameras = await page.locator("#cam-list .cam").count();
  log("cameras after login", cameras);
  return { account: EMAIL, cameras };
}
