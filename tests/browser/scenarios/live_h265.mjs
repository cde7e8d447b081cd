// An H.265 camera in the console: ring-bridge does not send H.265 to browsers, so
// the tile must say why and what to do instead (RTSP, or H.264 from Ring), never
// sit black. The daemon offers H.265 to Ring (stream.h265) and the simulated Front
// Door, in HEVC mode, streams it.

import { check, waitFor, log } from "../harness.mjs";

const SLUG = "front-door";

export default async function liveH265(ctx) {
  const page = await ctx.newPage();
  await page.goto(ctx.consoleUrl);
  await waitFor("camera rows", () => page.locator("#cam-list .cam").count().then((n) => n === 6));
  await page.click(`.cam[data-slug="${SLUG}"] button`);
  const tile = page.locator(`.tile[data-slug="${SLUG}"]`);
  await waitFor("the tile to fail", async () => (await tile.getAttribute("data-state")) === "failed", { timeout: 40000 });
  const detail = (await tile.locator(".overlay .detail").textContent()) || "";
  log("tile says", detail);
  check(/H\.265/.test(detail), `the tile names the codec: ${detail}`);
  check(/RTSP/.test(detail) && /h265/.test(detail), `the tile says what to do instead: ${detail}`);
  check(await tile.locator(".overlay button.retry").isVisible(), "a Retry button is offered");
  const frames = await page.evaluate((s) => {
    const v = document.querySelector(`.tile[data-slug="${s}"] video`);
    return v ? v.getVideoPlaybackQuality().totalVideoFrames : 0;
  }, SLUG);
  check(frames === 0, `no video was played (${frames} frames)`);
  // The camera row names the codec Ring sends (known once the stream described itself).
  const codec = page.locator(`.cam[data-slug="${SLUG}"] .pill.codec`);
  await waitFor("the codec in the camera row", async () => (await codec.count()) === 1 && (await codec.textContent()) === "H.265", { timeout: 40000 });
  await ctx.shot(page, "console-h265-refused");
  return { detail, codec: await codec.textContent() };
}
