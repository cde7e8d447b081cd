// Live tiles without a real stream: the WHEP answers are faked with
// page.route, so this checks the console's side of the contract and its
// failure states whether or not the server has WHEP yet.

import { check, waitFor, log } from "../harness.mjs";

const tile = (page, slug) => page.locator(`.tile[data-slug="${slug}"]`);

export default async function tiles(ctx) {
  const page = await ctx.newPage();
  const offers = [];
  await page.route("**/api/webrtc/*/whep", async (route) => {
    const req = route.request();
    offers.push({ url: req.url(), type: req.headers()["content-type"], sdp: req.postData() || "" });
    await route.fulfill({
      status: 503,
      contentType: "application/json",
      body: JSON.stringify({ error: "unavailable", message: "Ring did not answer the live call (simulated)" }),
    });
  });
  // Driveway pretends to have no talk; the rest keep the server's answer.
  await page.route("**/api/ring/cameras/10003/capabilities", (route) =>
    route.fulfill({
      status: 200,
      contentType: "application/json",
      body: JSON.stringify({ live_view: true, talk: false, light: true, siren: true, snapshot: true, recordings: true, battery: false, doorbell: false }),
    }));
  await page.goto(ctx.consoleUrl);
  await waitFor("camera rows", () => page.locator("#cam-list .cam").count().then((n) => n === 6));

  // Connect: one POST per attempt, with the offer the contract asks for.
  await page.click('.cam[data-slug="front-door"] button');
  await waitFor("the tile to fail", async () => (await tile(page, "front-door").getAttribute("data-state")) === "failed");
  const t = tile(page, "front-door");
  check(/did not answer the live call/.test(await t.textContent()), "the server's message is shown");
  check(await t.locator("button.retry").isVisible(), "Retry offered");
  check(offers.length === 1, `one offer posted, got ${offers.length}`);
  const o = offers[0];
  log("offer url", o.url, o.type);
  check(o.url.endsWith("/api/webrtc/front-door/whep"), `WHEP URL ${o.url}`);
  check(o.type === "application/sdp", `Content-Type ${o.type}`);
  const sections = o.sdp.split(/\r?\nm=/).slice(1);
  const video = sections.find((s) => s.startsWith("video"));
  const audio = sections.find((s) => s.startsWith("audio"));
  check(video && /a=recvonly/.test(video), "video m-line is recvonly");
  check(audio && /a=sendrecv/.test(audio), "audio m-line is sendrecv");
  check(/a=msid:/.test(audio), "the mic track rides the audio m-line");
  check(/a=candidate:/.test(o.sdp), "the offer carries ICE candidates (no trickle)");
  check(/Disconnect/.test(await page.textContent('.cam[data-slug="front-door"] button')), "list button turns into Disconnect");
  await t.locator("button.retry").click();
  await waitFor("a second offer", () => offers.length === 2);
  await waitFor("failed again", async () => (await t.getAttribute("data-state")) === "failed");

  // A camera without talk says so.
  await page.click('.cam[data-slug="driveway"] button');
  const dw = tile(page, "driveway");
  await waitFor("the Driveway tile", () => dw.count().then((n) => n === 1));
  await waitFor("no-talk message", async () => /no speaker|Talk unavailable/.test(await dw.locator(".tile-msg").textContent()));
  check(await dw.locator(".talk-btn").isDisabled(), "talk disabled without talk capability");

  // Grid holds several tiles; then the screenshot.
  check((await page.locator("#grid .tile").count()) === 2, "two tiles in the grid");
  await waitFor("Driveway failed", async () => (await dw.getAttribute("data-state")) === "failed");
  await ctx.shot(page, "console-live-tiles");

  // Disconnect all empties the grid and restores the Connect buttons.
  await page.click("#disconnect-all");
  await waitFor("empty grid", () => page.locator("#grid .tile").count().then((n) => n === 0));
  check(/Connect/.test(await page.textContent('.cam[data-slug="front-door"] button')), "Connect is back");

  // A refused microphone is explained, and live view still tries.
  const denied = await ctx.newPage();
  await denied.addInitScript(() => {
    navigator.mediaDevices.getUserMedia = () => Promise.reject(new DOMException("Permission denied", "NotAllowedError"));
  });
  await denied.route("**/api/webrtc/*/whep", (route) =>
    route.fulfill({ status: 503, contentType: "application/json", body: JSON.stringify({ error: "unavailable", message: "no" }) }));
  await denied.goto(ctx.consoleUrl);
  await waitFor("rows", () => denied.locator("#cam-list .cam").count().then((n) => n === 6));
  await denied.click('.cam[data-slug="back-door"] button');
  const bd = tile(denied, "back-door");
  await waitFor("mic message", async () => /Microphone access is blocked/.test(await bd.locator(".tile-msg").textContent()));

  // Without WHEP on the server at all, the tile says so (only when absent).
  const real = await ctx.newPage();
  await real.goto(ctx.consoleUrl);
  await waitFor("rows", () => real.locator("#cam-list .cam").count().then((n) => n === 6));
  const probe = await ctx.api("api/webrtc/front-door/whep");
  if (probe.status === 404 && probe.body && /endpoint/.test(probe.body.message || "")) {
    await real.click('.cam[data-slug="front-door"] button');
    const rt = tile(real, "front-door");
    await waitFor("no-WHEP failure", async () => (await rt.getAttribute("data-state")) === "failed");
    check(/no WebRTC \(WHEP\) endpoint/.test(await rt.textContent()), "missing WHEP explained");
  }
  return { offers: offers.length };
}
