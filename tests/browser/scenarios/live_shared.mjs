// Three browser viewers of one camera share one Ring live session; the talk
// floor is exclusive ("someone else is talking"); closing every viewer ends
// the Ring session after the linger time.

import { check, waitFor, log } from "../harness.mjs";

const SLUG = "front-door";

export default async function liveShared(ctx) {
  const pages = [];
  for (let i = 0; i < 3; i++) {
    const p = await ctx.newPage({ width: 900, height: 700 });
    if (i === 2) {
      // A slow permission answer: the video must start without the mic, and
      // the mic joins later (replaceTrack, no renegotiation).
      await p.addInitScript(() => {
        const orig = navigator.mediaDevices.getUserMedia.bind(navigator.mediaDevices);
        navigator.mediaDevices.getUserMedia = (c) => new Promise((r) => setTimeout(r, 4000)).then(() => orig(c));
      });
    }
    await p.goto(ctx.consoleUrl);
    await waitFor(`rows in viewer ${i}`, () => p.locator("#cam-list .cam").count().then((n) => n === 6));
    await p.click(`.cam[data-slug="${SLUG}"] button`);
    pages.push(p);
  }
  const tiles = pages.map((p) => p.locator(`.tile[data-slug="${SLUG}"]`));
  for (const [i, t] of tiles.entries()) {
    await waitFor(`viewer ${i} live`, async () => (await t.getAttribute("data-state")) === "live", { timeout: 40000 });
  }
  const st = await ctx.simState();
  log("sim", st.live_sessions_active, st.live_sessions_total);
  check(st.live_sessions_active === 1, `one Ring session for three viewers, got ${st.live_sessions_active}`);
  check(st.live_sessions_total === 1, `no extra sessions were opened, got ${st.live_sessions_total}`);

  // Viewer 0 holds the floor; viewer 1 is told someone else is talking.
  const [a, b] = pages;
  await tiles[0].locator(".talk-btn").hover();
  await a.mouse.down();
  await waitFor("viewer 0 talking", async () => (await tiles[0].getAttribute("data-talking")) === "true", { timeout: 8000 });
  await tiles[1].locator(".talk-btn").hover();
  await b.mouse.down();
  await waitFor("busy message for viewer 1", async () => /someone else is talking/i.test(await tiles[1].locator(".tile-msg").textContent()), { timeout: 8000 });
  check((await tiles[1].getAttribute("data-talking")) !== "true", "viewer 1 is not talking");
  await ctx.shot(b, "console-live-floor-busy");
  await b.mouse.up();
  await a.mouse.up();
  await waitFor("viewer 0 released", async () => (await tiles[0].getAttribute("data-talking")) === "false");

  // After viewer 0 let go, viewer 1 can talk.
  await tiles[1].locator(".talk-btn").hover();
  await b.mouse.down();
  await waitFor("viewer 1 talking", async () => (await tiles[1].getAttribute("data-talking")) === "true", { timeout: 8000 });

  // Viewer 2 (late microphone) talks through the track added after connecting.
  const c = pages[2];
  await b.mouse.up();
  await waitFor("viewer 1 released", async () => (await tiles[1].getAttribute("data-talking")) === "false");
  await waitFor("viewer 2's late mic", () => c.evaluate((s) => Boolean(window.ringBridge.tiles[s].mic), SLUG), { timeout: 10000 });
  const before = (await ctx.simState()).talkback?.["10001"]?.packets || 0;
  await tiles[2].locator(".talk-btn").hover();
  await c.mouse.down();
  await waitFor("viewer 2 talking", async () => (await tiles[2].getAttribute("data-talking")) === "true", { timeout: 8000 });
  const tb = await waitFor("talkback from the late mic", async () => {
    const t = (await ctx.simState()).talkback?.["10001"];
    return t && t.packets > before + 20 ? t : null;
  }, { timeout: 10000 });
  log("late-mic talkback", JSON.stringify(tb), "before", before);
  await c.mouse.up();

  // Closing every viewer ends the Ring session (linger is short in the test config).
  for (const p of pages) await p.close({ runBeforeUnload: true });
  await waitFor("Ring session ended", async () => (await ctx.simState()).live_sessions_active === 0, { timeout: 30000 });
  return { viewers: pages.length };
}
