// History: events of a camera with time/kind/person/duration, reasons on the
// events that cannot play, "Older" pagination, a camera without Ring Protect,
// and an MP4 recording that really plays in the page.

import { check, waitFor, log } from "../harness.mjs";

const rows = (page) =>
  page.$$eval("#hist-list .event", (els) =>
    els.map((el) => ({
      id: el.dataset.id,
      kind: el.dataset.kind,
      playable: el.dataset.playable === "true",
      text: el.textContent,
      time: el.querySelector("time")?.textContent || "",
      disabled: el.querySelector("button.play")?.disabled,
      reason: el.querySelector(".ev-reason")?.textContent || "",
      thumb: el.querySelector(".thumb")?.className || "",
    })),
  );

export default async function history(ctx) {
  const page = await ctx.newPage();
  await page.goto(new URL("#/history", ctx.consoleUrl).href);
  await waitFor("the first page of events", () => page.locator("#hist-list .event").count().then((n) => n === 25), { timeout: 20000 });
  check((await page.inputValue("#hist-camera")) === "10001", "Front Door is picked first");

  let evs = await rows(page);
  check(evs.every((e) => e.time.length > 4), "every event shows its local time");
  check(evs.every((e) => /placeholder/.test(e.thumb)), "events without thumbnail_url show a placeholder");
  check(evs.some((e) => e.kind === "ding") && evs.some((e) => e.kind === "motion"), "dings and motions listed");
  check(evs.some((e) => /person detected/.test(e.text)), "person detection shown");
  check(evs.some((e) => /\d+:\d\d/.test(e.text)), "durations shown");
  const pending = evs.find((e) => /Processing/.test(e.reason));
  check(pending && pending.disabled, "the pending recording is disabled with 'Processing'");
  const unrecorded = evs.find((e) => /Not recorded/.test(e.reason));
  check(unrecorded && unrecorded.disabled, "the unrecorded event is disabled with 'Not recorded'");
  check(evs.filter((e) => e.playable).every((e) => !e.disabled), "playable events have an enabled Play");
  check(/25 events, more available/.test(await page.textContent("#hist-summary")), "summary counts 25 with more");

  // Older pages until the end (30 seeded events), bounded.
  for (let i = 0; i < 3 && (await page.locator("#hist-older").isVisible()); i++) {
    const before = await page.locator("#hist-list .event").count();
    await page.click("#hist-older");
    await waitFor("the Older page", async () =>
      (await page.locator("#hist-list .event").count()) > before || (await page.locator("#hist-older").isHidden()));
  }
  evs = await rows(page);
  check(evs.length === 30, `all 30 events after Older, got ${evs.length}`);
  check(new Set(evs.map((e) => e.id)).size === 30, "no event listed twice");
  check(await page.locator("#hist-older").isHidden(), "Older hidden at the end");

  // Play the newest playable event in the page's player.
  await page.evaluate(() => window.scrollTo(0, 0));
  const first = page.locator("#hist-list .event[data-playable='true'] button.play").first();
  await first.click();
  await waitFor("the recording to play", () =>
    page.evaluate(() => {
      const v = document.getElementById("hist-video");
      return v.readyState >= 2 && v.currentTime > 0.5 ? { t: v.currentTime, w: v.videoWidth, h: v.videoHeight } : null;
    }), { timeout: 20000 });
  const t1 = await page.evaluate(() => document.getElementById("hist-video").currentTime);
  await page.waitForTimeout(700);
  const v2 = await page.evaluate(() => {
    const v = document.getElementById("hist-video");
    return { t: v.currentTime, w: v.videoWidth, h: v.videoHeight, err: v.error && v.error.code };
  });
  log("player", JSON.stringify(v2));
  check(v2.t > t1 || v2.t >= 3.5, `currentTime advances (${t1} → ${v2.t})`);
  check(v2.w === 640 && v2.h === 360, `decoded 640x360, got ${v2.w}x${v2.h}`);
  check(/Front Door/.test(await page.textContent("#hist-player-title")), "player titled with the camera");
  await page.evaluate(() => {
    const v = document.getElementById("hist-video");
    v.pause();
    v.currentTime = 1.5;
  });
  await page.waitForTimeout(300);
  await ctx.shot(page, "console-history");

  // A recording link Ring refuses: the player shows the server's reason.
  await ctx.simPost("faults", { endpoint: "recording", status: 404, count: 20 });
  await page.locator("#hist-list .event[data-playable='true'] button.play").nth(2).click();
  await waitFor("the play error", async () => /Could not play this recording: .+/.test(await page.textContent("#hist-player-msg")) &&
    !/browser could not load/.test(await page.textContent("#hist-player-msg")), { timeout: 20000 });
  log("play error", await page.textContent("#hist-player-msg"));
  await fetch(new URL("_sim/faults", ctx.simUrl), { method: "DELETE", signal: AbortSignal.timeout(5000) });

  // A camera without Ring Protect says so on every event.
  await page.click("#hist-player-close");
  await page.selectOption("#hist-camera", "10004");
  await waitFor("Living Room events", async () => {
    const r = await rows(page);
    return r.length > 0 && r.every((e) => /No Ring Protect/.test(e.reason) && e.disabled);
  });
  check(/no Ring Protect plan/.test(await page.textContent("#hist-notice")), "no-Protect notice above the list");
  await ctx.shot(page, "console-history-no-protect");
  return { events: evs.length, played_to: v2.t };
}
