// The console loads at / and /ingest.html, lists the simulator's six cameras
// with their states, and offline cameras cannot be connected.

import { check, waitFor, log } from "../harness.mjs";

export default async function cameras(ctx) {
  const page = await ctx.newPage();
  await page.goto(ctx.consoleUrl, { waitUntil: "domcontentloaded" });
  await waitFor("6 camera rows", () => page.locator("#cam-list .cam").count().then((n) => n === 6));

  const rows = await page.$$eval("#cam-list .cam", (els) =>
    els.map((el) => ({
      id: el.dataset.id,
      name: el.querySelector(".cam-name").textContent,
      online: el.dataset.online,
      stream: el.dataset.stream,
      meta: el.querySelector(".cam-meta").textContent,
      sub: el.querySelector(".cam-sub").textContent,
      note: el.querySelector(".cam-note")?.textContent || "",
      button: el.querySelector("button").textContent,
      disabled: el.querySelector("button").disabled,
    })),
  );
  log("rows", JSON.stringify(rows));
  const byName = Object.fromEntries(rows.map((r) => [r.name, r]));
  for (const n of ["Front Door", "Back Door", "Driveway", "Living Room", "Garage", "Cabin Porch"]) {
    check(byName[n], `camera ${n} listed`);
    check(byName[n].stream === "inactive", `${n} stream status inactive, got ${byName[n].stream}`);
    check(/idle/.test(byName[n].meta), `${n} shows the idle stream status: ${byName[n].meta}`);
  }
  check(byName.Garage.online === "false" && /offline/.test(byName.Garage.meta), "Garage shown offline");
  check(byName.Garage.disabled, "offline Garage cannot be connected");
  check(byName["Front Door"].online === "true" && /online/.test(byName["Front Door"].meta), "Front Door online");
  check(!byName["Front Door"].disabled && byName["Front Door"].button === "Connect", "Front Door has Connect");
  check(/87%/.test(byName["Back Door"].meta), `Back Door battery 87%: ${byName["Back Door"].meta}`);
  check(/41%/.test(byName.Garage.meta), "Garage battery 41%");
  check(byName["Front Door"].sub === "Doorbell Pro 2 · doorbell", `model shown: ${byName["Front Door"].sub}`);
  check(/Offline/.test(byName.Garage.note), "offline camera explains why it cannot connect");

  // Tabs, account and push pills, no banner.
  check((await page.getAttribute("#tab-live", "aria-current")) === "page", "Live tab current");
  await waitFor("auth pill says connected", async () => /connected/i.test(await page.textContent("#auth-pill")));
  await waitFor("push pill says OK", async () => /Push OK/.test(await page.textContent("#push-pill")));
  check(await page.locator("#banner").isHidden(), "no re-auth banner while authenticated");
  await ctx.shot(page, "console-live");

  // Dark mode renders too.
  const dark = await ctx.newPage({ colorScheme: "dark" });
  await dark.goto(ctx.consoleUrl);
  await waitFor("6 rows (dark)", () => dark.locator("#cam-list .cam").count().then((n) => n === 6));
  await ctx.shot(dark, "console-live-dark");

  // The seed's old page name serves the same app.
  const old = await ctx.newPage();
  await old.goto(new URL("ingest.html", ctx.consoleUrl).href);
  await waitFor("cameras on /ingest.html", () => old.locator("#cam-list .cam").count().then((n) => n === 6));

  // Keyboard: Tab reaches the tabs and a Connect button.
  await page.keyboard.press("Tab");
  await page.keyboard.press("Tab");
  const focused = await page.evaluate(() => document.activeElement && document.activeElement.textContent);
  check(focused && focused.length > 0, "keyboard focus lands on a control");
  return { cameras: rows.length };
}
