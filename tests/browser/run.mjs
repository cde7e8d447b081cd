// Runs one browser scenario: `node tests/browser/run.mjs <name>` with the env
// CONSOLE_URL (the daemon, e.g. http://127.0.0.1:PORT/), SIM_URL (the Ring
// simulator) and ARTIFACTS_DIR (screenshots). The scenario is
// tests/browser/scenarios/<name>.mjs; its default export gets the harness
// context. Exit 0 = passed; the last line is `RESULT {json}` either way.
//
// A global deadline (SCENARIO_TIMEOUT_MS, default 120 s) ends a stuck run.

import { makeContext, log } from "./harness.mjs";

const name = process.argv[2];
if (!name || !/^[a-z0-9_]+$/.test(name)) {
  console.error("usage: node run.mjs <scenario>");
  process.exit(2);
}
for (const k of ["CONSOLE_URL", "SIM_URL"]) {
  if (!process.env[k]) {
    console.error(`${k} is not set`);
    process.exit(2);
  }
}

const deadlineMs = Number(process.env.SCENARIO_TIMEOUT_MS || 120000);
let ctx = null;
const killer = setTimeout(async () => {
  console.log(`RESULT ${JSON.stringify({ ok: false, error: `scenario ${name} exceeded ${deadlineMs} ms` })}`);
  try {
    if (ctx) await ctx.browser.close();
  } finally {
    process.exit(1);
  }
}, deadlineMs);

let result;
try {
  const mod = await import(`./scenarios/${name}.mjs`);
  ctx = await makeContext(process.env);
  log(`scenario ${name} against ${process.env.CONSOLE_URL}`);
  const details = await mod.default(ctx);
  if (ctx.pageErrors.length) {
    throw new Error(`uncaught errors in the page:\n${ctx.pageErrors.join("\n")}`);
  }
  result = { ok: true, details: details ?? null };
} catch (e) {
  result = { ok: false, error: String(e && e.stack ? e.stack : e) };
} finally {
  if (ctx) await ctx.browser.close().catch(() => {});
  clearTimeout(killer);
}
console.log(`RESULT ${JSON.stringify(result)}`);
process.exit(result.ok ? 0 : 1);
