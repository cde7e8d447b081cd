// The Stats toggle of a live tile against the simulated camera: the overlay
// appears, its numbers change every second (ingress fps near the simulator's
// 15, this browser counted as a WHEP viewer), it costs one request per second,
// and hiding it stops the requests.

import { check, waitFor, log } from "../harness.mjs";

const CAM = { slug: "front-door", id: "10001" };

export default async function stats(ctx) {
  const page = await ctx.newPage();
  const polls = [];
  page.on("request", (r) => {
    if (r.url().endsWith(`/api/ring/cameras/${CAM.id}/live`)) polls.push(Date.now());
  });
  await page.goto(ctx.consoleUrl);
  await waitFor("camera rows", () => page.locator("#cam-list .cam").count().then((n) => n === 6));
  await page.click(`.cam[data-slug="${CAM.slug}"] button`);
  const tile = page.locator(`.tile[data-slug="${CAM.slug}"]`);
  await waitFor("the tile to go live", async () => (await tile.getAttribute("data-state")) === "live", { timeout: 40000 });

  const panel = tile.locator(".stats-panel");
  check(await panel.isHidden(), "the overlay starts hidden");
  check(polls.length === 0, `no stats requests before the toggle (${polls.length})`);
  await tile.locator("button.stats-btn").click();
  await waitFor("the overlay", () => panel.isVisible());
  check((await tile.locator("button.stats-btn").getAttribute("aria-pressed")) === "true", "toggle pressed");

  // Numbers that move: frames rise from one refresh to the next.
  const frames = async () => Number((await panel.getAttribute("data-frames")) || 0);
  const f1 = await waitFor("first figures", async () => (await frames()) || null);
  const text1 = await panel.textContent();
  await waitFor("a refresh with more frames", async () => (await frames()) > f1, { timeout: 5000 });
  const fps = await waitFor("fps near 15", async () => {
    const v = Number((await panel.getAttribute("data-fps")) || 0);
    return v >= 12 && v <= 18 ? v : null;
  }, { timeout: 10000 });
  const text2 = await panel.textContent();
  log("overlay", text1, "→", text2, "fps", fps);
  check(text1 !== text2, "the overlay text changed");
  check(/h264 1920×1080/.test(text2), `codec and size shown: ${text2}`);
  check(/whep 1/.test(text2), `this browser is a WHEP viewer: ${text2}`);
  check(/→ whep\s*\d/.test(text2), `per-viewer line: ${text2}`);
  await ctx.shot(page, "console-live-stats");

  // One poll per second while shown (not per frame).
  const start = polls.length;
  await page.waitForTimeout(3000);
  const n = polls.length - start;
  check(n >= 2 && n <= 4, `about 3 requests in 3 s, got ${n}`);

  // Hidden: no more requests.
  await tile.locator("button.stats-btn").click();
  check(await panel.isHidden(), "the overlay hides");
  await page.waitForTimeout(300);
  const after = polls.length;
  await page.waitForTimeout(2000);
  check(polls.length === after, `no requests while hidden (${polls.length - after})`);
  return { fps, polls_in_3s: n };
}
