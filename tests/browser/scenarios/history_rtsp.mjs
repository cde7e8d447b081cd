// History → "Play over RTSP": the button selects that recording as the camera's
// RTSP event stream and shows the URL to copy; the Rust side then plays it.

import { check, waitFor, log } from "../harness.mjs";

export default async function historyRtsp(ctx) {
  const page = await ctx.newPage();
  await page.goto(new URL("#/history", ctx.consoleUrl).href);
  await waitFor("the events", () => page.locator("#hist-list .event").count().then((n) => n > 0), { timeout: 20000 });
  check(await page.locator("#hist-rtsp").isHidden(), "no RTSP box before a click");

  // The second playable event (not the default newest one).
  const rows = page.locator("#hist-list .event[data-playable='true']");
  const second = rows.nth(1);
  const eventId = await second.getAttribute("data-id");
  check(
    (await page.locator("#hist-list .event[data-playable='false'] button.rtsp").count()) === 0,
    "events that cannot play have no RTSP button",
  );
  await second.locator("button.rtsp").click();
  const rtspUrl = await waitFor("the RTSP URL", async () => {
    const v = await page.inputValue("#hist-rtsp-url");
    return v ? v : null;
  }, { timeout: 15000 });
  log("rtsp", rtspUrl);
  check(/^rtsp:\/\/[^/]+\/front-door\/event$/.test(rtspUrl), `URL of the event stream, got ${rtspUrl}`);
  check((await page.getAttribute("#hist-rtsp", "data-event-id")) === eventId, "the clicked event is selected");
  await ctx.shot(page, "console-history-rtsp");
  return { rtsp_url: rtspUrl, event_id: eventId };
}
