// Logs: the SSE stream shows the backlog and new lines caused by API calls;
// the level filter, text filter, pause/resume and copy work.

import { check, waitFor, log } from "../harness.mjs";

const visible = (page) =>
  page.$$eval("#log-view .line", (els) =>
    els.filter((el) => el.offsetParent !== null).map((el) => ({ level: el.dataset.level, text: el.textContent })));

export default async function logs(ctx) {
  const page = await ctx.newPage();
  await page.goto(new URL("#/logs", ctx.consoleUrl).href);
  await waitFor("the stream to connect", async () => (await page.textContent("#log-status")) === "live");
  await waitFor("backlog lines", async () => (await visible(page)).some((l) => /HTTP API listening/.test(l.text)));
  check((await page.inputValue("#log-level")) === "info", "default level is info");
  let lines = await visible(page);
  check(lines.every((l) => ["info", "warn", "error"].includes(l.level)), "info filter hides debug lines");

  // New lines: history calls make the daemon log Ring requests at debug level.
  await page.selectOption("#log-level", "debug");
  for (let i = 0; i < 3; i++) await ctx.api("api/ring/cameras/10001/history?limit=1");
  await waitFor("the history call in the log", async () =>
    (await visible(page)).some((l) => l.level === "debug" && /doorbots\/10001\/history/.test(l.text)));

  // A failing call logs a warning (Ring answers 500 for a while).
  await ctx.simPost("faults", { endpoint: "history", status: 500, count: 10 });
  const failed = await ctx.api("api/ring/cameras/10002/history?limit=1");
  check(failed.status === 502, `the faulted call fails with 502, got ${failed.status}`);
  await fetch(new URL("_sim/faults", ctx.simUrl), { method: "DELETE", signal: AbortSignal.timeout(5000) });
  await waitFor("the warning line", async () => (await visible(page)).some((l) => l.level === "warn" && /request failed/.test(l.text)));

  await page.selectOption("#log-level", "warn");
  lines = await visible(page);
  log("warn+ lines", lines.length);
  check(lines.length > 0 && lines.every((l) => l.level === "warn" || l.level === "error"), "warn filter shows only warn and error");
  await ctx.shot(page, "console-logs-warn");

  // Text filter.
  await page.selectOption("#log-level", "debug");
  await page.fill("#log-search", "10001/history");
  lines = await visible(page);
  check(lines.length > 0 && lines.every((l) => l.text.includes("10001/history")), "text filter keeps matching lines only");
  await page.fill("#log-search", "");

  // Pause holds new lines back; Resume shows them.
  await page.click("#log-pause");
  const before = await page.locator("#log-view .line").count();
  await ctx.api("api/ring/cameras/10003/history?limit=1");
  await waitFor("the pause button to count new lines", async () => /Resume \(\d+ new\)/.test(await page.textContent("#log-pause")));
  check((await page.locator("#log-view .line").count()) === before, "no lines added while paused");
  await page.click("#log-pause");
  await waitFor("held lines to appear", async () => (await visible(page)).some((l) => /doorbots\/10003\/history/.test(l.text)));

  // Copy puts the visible lines on the clipboard.
  await page.click("#log-copy");
  await waitFor("copy confirmation", async () => /Copied/.test(await page.textContent("#log-copy")));
  const clip = await page.evaluate(() => navigator.clipboard.readText().catch((e) => `ERR ${e}`));
  check(/DEBUG/.test(clip) && clip.includes("10003/history"), `clipboard has the log lines: ${clip.slice(0, 200)}`);

  // The JSON endpoint agrees.
  const j = await ctx.api("api/logs?level=warn");
  check(j.status === 200 && j.body.lines.length > 0 && j.body.lines.every((l) => ["warn", "error"].includes(l.level)), "GET api/logs?level=warn");

  await page.selectOption("#log-level", "debug");
  await page.evaluate(() => {
    const v = document.getElementById("log-view");
    v.scrollTop = v.scrollHeight;
  });
  await ctx.shot(page, "console-logs");
  return { lines: await page.locator("#log-view .line").count() };
}
