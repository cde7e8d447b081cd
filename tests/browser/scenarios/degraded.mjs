// The degraded-parts banner: the daemon runs without the JPEG encoder, so the
// console says which part cannot work and which package to install.

import { check, waitFor, log } from "../harness.mjs";

export default async function degraded(ctx) {
  const page = await ctx.newPage();
  await page.goto(new URL("#/live", ctx.consoleUrl).href);
  await waitFor("the degraded banner", async () => page.isVisible("#degraded-banner"));
  const text = await page.textContent("#degraded-banner");
  log("banner", text);
  check(/Snapshots from live video/.test(text), `the banner names the part: ${text}`);
  check(/jpegenc/.test(text) && /gstreamer1\.0-plugins-good/.test(text), `the banner names element and package: ${text}`);
  check(!(await page.isVisible("#banner")), "the sign-in banner stays hidden");
  await ctx.shot(page, "console-degraded-banner");
  return { banner: text };
}
