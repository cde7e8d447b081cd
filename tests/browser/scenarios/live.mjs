// Live view over WHEP against the simulated Ring camera: video frames keep
// coming, audio packets arrive, unmute works, Hold to Talk (mouse, then
// keyboard) reaches the camera's speaker in the simulator, and so does a text
// typed into the tile's Announce box.

import { check, waitFor, log } from "../harness.mjs";

const CAM = { slug: "front-door", id: "10001" };

async function inboundAudioPackets(page, slug) {
  return page.evaluate(async (s) => {
    const t = window.ringBridge.tiles[s];
    if (!t || !t.session || !t.session.pc) return 0;
    const stats = await t.session.pc.getStats();
    let n = 0;
    stats.forEach((r) => {
      if (r.type === "inbound-rtp" && r.kind === "audio") n += r.packetsReceived || 0;
    });
    return n;
  }, slug);
}

async function outboundAudioPackets(page, slug) {
  return page.evaluate(async (s) => {
    const stats = await window.ringBridge.tiles[s].session.pc.getStats();
    let n = 0;
    stats.forEach((r) => {
      if (r.type === "outbound-rtp" && r.kind === "audio") n += r.packetsSent || 0;
    });
    return n;
  }, slug);
}

const frames = (page, slug) =>
  page.evaluate((s) => {
    const v = document.querySelector(`.tile[data-slug="${s}"] video`);
    return v ? v.getVideoPlaybackQuality().totalVideoFrames : 0;
  }, slug);

export default async function live(ctx) {
  const page = await ctx.newPage();
  await page.goto(ctx.consoleUrl);
  await waitFor("camera rows", () => page.locator("#cam-list .cam").count().then((n) => n === 6));
  await page.click(`.cam[data-slug="${CAM.slug}"] button`);
  const tile = page.locator(`.tile[data-slug="${CAM.slug}"]`);
  await waitFor("the tile to go live", async () => (await tile.getAttribute("data-state")) === "live", { timeout: 40000 });

  // Video: > 20 frames in 3 s.
  const f1 = await frames(page, CAM.slug);
  await page.waitForTimeout(3000);
  const f2 = await frames(page, CAM.slug);
  log("frames", f1, "→", f2);
  check(f2 - f1 > 20, `video frames rising > 20 in 3 s (${f1} → ${f2})`);
  const size = await page.evaluate((s) => {
    const v = document.querySelector(`.tile[data-slug="${s}"] video`);
    return [v.videoWidth, v.videoHeight];
  }, CAM.slug);
  check(size[0] > 0 && size[1] > 0, `video has a size ${size}`);

  // Audio: packets arrive; unmute turns the sound on.
  await waitFor("inbound audio packets", async () => (await inboundAudioPackets(page, CAM.slug)) > 0, { timeout: 10000 });
  check(await page.evaluate((s) => document.querySelector(`.tile[data-slug="${s}"] video`).muted, CAM.slug), "starts muted");
  await tile.locator(".mute-btn").click();
  check(!(await page.evaluate((s) => document.querySelector(`.tile[data-slug="${s}"] video`).muted, CAM.slug)), "unmuted");
  check((await tile.locator(".mute-btn").getAttribute("aria-pressed")) === "true", "mute button pressed state");

  // Hold to Talk with the mouse for 2 s.
  const before = (await ctx.simState()).talkback?.[CAM.id] || { packets: 0, energy: 0 };
  const talk = tile.locator(".talk-btn");
  check(await talk.isEnabled(), "talk enabled while live");
  await talk.hover();
  await page.mouse.down();
  await waitFor("talking indicator", async () => (await tile.getAttribute("data-talking")) === "true", { timeout: 8000 });
  check(await tile.locator(".talk-badge").isVisible(), "talking badge visible");
  check(await page.evaluate((s) => window.ringBridge.tiles[s].mic.enabled, CAM.slug), "mic enabled while holding");
  await ctx.shot(page, "console-live-talking");
  await page.waitForTimeout(2000);
  await page.mouse.up();
  await waitFor("talk released", async () => (await tile.getAttribute("data-talking")) === "false");
  check(!(await page.evaluate((s) => window.ringBridge.tiles[s].mic.enabled, CAM.slug)), "mic disabled after release");
  check((await outboundAudioPackets(page, CAM.slug)) > 0, "the browser sent audio");
  const after = await waitFor("talkback at the camera", async () => {
    const tb = (await ctx.simState()).talkback?.[CAM.id];
    return tb && tb.packets > before.packets && tb.energy > 0 ? tb : null;
  }, { timeout: 10000 });
  log("talkback", JSON.stringify(after));

  // Keyboard: Space on the focused tile.
  await tile.focus();
  await page.keyboard.down(" ");
  await waitFor("talking by keyboard", async () => (await tile.getAttribute("data-talking")) === "true", { timeout: 8000 });
  await page.keyboard.up(" ");
  await waitFor("released by keyboard", async () => (await tile.getAttribute("data-talking")) === "false");

  // Announce: typed text is spoken on the camera's speaker (a space typed in
  // the box is text, not Hold to Talk).
  const heardBefore = (await ctx.simState()).talkback?.[CAM.id]?.loud_ms || 0;
  await tile.locator(".announce-text").fill("Hello from the console");
  await tile.locator(".announce-text").press("Space");
  check((await tile.getAttribute("data-talking")) !== "true", "typing a space does not talk");
  await tile.locator(".announce-btn").click();
  await waitFor("the announcement to play", async () =>
    (await tile.locator(".tile-msg").textContent()).startsWith("Announced"), { timeout: 30000 });
  const heard = await waitFor("the announcement at the camera", async () => {
    const tb = (await ctx.simState()).talkback?.[CAM.id];
    return tb && tb.loud_ms > heardBefore + 500 ? tb : null;
  }, { timeout: 10000 });
  log("announce", await tile.locator(".tile-msg").textContent(), JSON.stringify(heard));

  await page.evaluate(() => document.activeElement && document.activeElement.blur());
  await page.waitForTimeout(300);
  await ctx.shot(page, "console-live-playing");

  // A second camera joins the grid.
  await page.click('.cam[data-slug="back-door"] button');
  const second = page.locator('.tile[data-slug="back-door"]');
  await waitFor("the second tile to go live", async () => (await second.getAttribute("data-state")) === "live", { timeout: 40000 });
  check((await page.locator("#grid .tile").count()) === 2, "two live tiles");
  await page.evaluate(() => document.activeElement && document.activeElement.blur());
  await page.waitForTimeout(1500);
  await ctx.shot(page, "console-live-grid");
  await second.locator(".close-btn").click();

  // Disconnect hangs up (the WHEP session is deleted).
  await tile.locator(".close-btn").click();
  await waitFor("tile removed", () => page.locator("#grid .tile").count().then((n) => n === 0));
  return { frames: f2 - f1, talkback: after, announced: heard };
}
