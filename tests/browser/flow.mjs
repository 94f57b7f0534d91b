// The admin pages in a real browser: Debian's chromium driven by
// playwright-core against a running tollgate stack (Apache, tollgate-authz,
// tollgate-relay, tollgate-admin.cgi, fake-ollama, PostgreSQL).
//
//   BASE=http://127.0.0.1:PORT PASSWORD=... OUT=dir node tests/browser/flow.mjs
//
// Logs in, creates a key and sees it once, uses it with curl through the
// stack, sees the usage chart and the request in Recent requests, disables
// the key and sees curl get 403, logs out. Every page is photographed at
// 1280 and 390 px wide into OUT. Prints one "step: ..." line per step and
// "FLOW OK" at the end; any failure exits non-zero with the reason.
import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { chromium } from "playwright-core";

const BASE = process.env.BASE;
const PASSWORD = process.env.PASSWORD;
const OUT = process.env.OUT;
const WIDTHS = [[1280, 900], [390, 844]];

function step(msg) {
  console.log(`step: ${msg}`);
}

function check(cond, msg) {
  if (!cond) throw new Error(`check failed: ${msg}`);
}

// One request through the stack with curl; returns the HTTP status.
function curlChat(key) {
  const out = execFileSync("curl", ["-sS", "-o", "/dev/null", "-w", "%{http_code}", "--max-time", "20",
    "-H", `Authorization: Bearer ${key}`, "-H", "Content-Type: application/json",
    "-d", JSON.stringify({ model: "llama3", stream: false, messages: [{ role: "user", content: "hi" }] }),
    `${BASE}/api/chat`], { encoding: "utf8" });
  return Number(out.trim());
}

async function shoot(page, name) {
  for (const [w, h] of WIDTHS) {
    await page.setViewportSize({ width: w, height: h });
    await page.screenshot({ path: join(OUT, `${name}-${w}.png`), fullPage: true });
  }
  await page.setViewportSize({ width: 1280, height: 900 });
}

const profile = mkdtempSync(join(tmpdir(), "tg-chromium-"));
let ctx;
try {
  ctx = await chromium.launchPersistentContext(profile, {
    executablePath: "/usr/bin/chromium",
    headless: true,
    viewport: { width: 1280, height: 900 },
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
      "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  });
  const page = ctx.pages()[0] || (await ctx.newPage());
  page.setDefaultTimeout(15000);
  const cspViolations = [];
  page.on("console", (m) => {
    if (/Content Security Policy|Refused to/.test(m.text())) cspViolations.push(m.text());
  });

  await page.goto(`${BASE}/admin/`);
  check(page.url().endsWith("/admin/login"), `not sent to the login page: ${page.url()}`);
  await shoot(page, "01-login");
  await page.fill("#password", "not the password");
  await page.click("button[type=submit]");
  check((await page.textContent("p.error")).includes("Wrong password"), "wrong password accepted");
  await page.fill("#password", PASSWORD);
  await page.click("button[type=submit]");
  await page.waitForURL(/\/admin\/keys$/);
  const cookies = await ctx.cookies();
  const c = cookies.find((x) => x.name === "tg_admin");
  check(c && c.httpOnly && c.secure && c.sameSite === "Strict", `session cookie: ${JSON.stringify(c)}`);
  step("logged in; the cookie is HttpOnly, Secure, SameSite=Strict");

  const css = await page.evaluate(() => getComputedStyle(document.querySelector("header.top")).display);
  check(css === "flex", "the stylesheet did not load");

  await page.click("text=New key");
  await shoot(page, "02-new-key-form");
  await page.fill("#f-name", "browser-demo");
  await page.fill("#f-tokens-day", "100000");
  await page.fill("#f-models", "llama3");
  await page.click("button:has-text('Create key')");
  const key = await page.inputValue("#newkey");
  check(/^sk-tg-[A-Za-z0-9]{49}$/.test(key), `no key shown: ${key}`);
  await ctx.grantPermissions(["clipboard-read", "clipboard-write"], { origin: BASE });
  await page.click("button.copy");
  await page.waitForFunction(() => document.querySelector("button.copy").textContent === "Copied");
  check((await page.evaluate(() => navigator.clipboard.readText())) === key, "Copy key did not copy the key");
  step("the Copy key button put the key on the clipboard");
  check((await page.textContent(".warning")).includes("shown this once"), "no shown-once warning");
  await page.evaluate(() => {
    const k = document.querySelector("#newkey");
    k.value = k.value.slice(0, 10) + "…(hidden in the screenshot)";
  });
  await shoot(page, "03-key-created");
  step("created a key; shown once with a warning");

  await page.click("text=Go to the key's page");
  const detailUrl = page.url();
  check(!(await page.content()).includes(key), "the key is shown again on its page");
  await page.goto(`${BASE}/admin/keys`);
  check(!(await page.content()).includes(key), "the key is shown again in the list");
  step("the key is not shown again");

  const status = curlChat(key);
  check(status === 200, `curl with the new key: ${status}`);
  step("curl through the stack with the key: 200");

  await page.goto(`${BASE}/admin/keys`);
  await shoot(page, "04-keys");
  await page.goto(`${BASE}/admin/usage`);
  const bars = await page.locator("svg.chart rect").count();
  check(bars >= 1, "no bar in the usage chart");
  check((await page.textContent(".legend")).includes("llama3"), "llama3 not in the legend");
  check((await page.textContent("table")).includes("browser-demo"), "the key is not in Top keys");
  await shoot(page, "05-usage");
  step(`usage chart shows ${bars} bar(s) for llama3`);

  await page.goto(`${BASE}/admin/requests`);
  const row = page.locator("table.requests tbody tr").first();
  const rowText = await row.textContent();
  check(rowText.includes("browser-demo") && rowText.includes("/api/chat") && rowText.includes("200"),
    `recent request row: ${rowText}`);
  await shoot(page, "06-requests");
  step("the request is in Recent requests");

  await page.goto(detailUrl);
  await page.click("button:has-text('Disable key')");
  await page.waitForURL(/done=disabled/);
  check((await page.textContent(".badge")).includes("disabled"), "not shown as disabled");
  await shoot(page, "07-key-detail-disabled");
  const after = curlChat(key);
  check(after === 403, `curl with the disabled key: ${after}`);
  step("disabled the key; curl gets 403");

  for (const [path, name] of [["/settings", "08-settings"], ["/health", "09-health"], ["/audit", "10-audit"]]) {
    await page.goto(`${BASE}/admin${path}`);
    check((await page.title()).includes("tollgate admin"), `${path}: ${await page.title()}`);
    await shoot(page, name);
  }
  check((await page.textContent("table")).includes("key.disable"), "the audit log misses key.disable");
  step("settings, health and audit pages render");

  // Keyboard focus is visible: tab to the first link and photograph it.
  await page.goto(`${BASE}/admin/keys`);
  await page.keyboard.press("Tab");
  const outline = await page.evaluate(() => getComputedStyle(document.activeElement).outlineStyle);
  check(outline !== "none", `no focus outline (${outline})`);
  await page.screenshot({ path: join(OUT, "11-focus-1280.png") });
  step("keyboard focus is visible");

  await page.click("button:has-text('Log out')");
  await page.waitForURL(/\/admin\/login$/);
  await page.goto(`${BASE}/admin/keys`);
  check(page.url().endsWith("/admin/login"), "still logged in after logging out");
  step("logged out");

  check(cspViolations.length === 0, `CSP violations: ${cspViolations.join("; ")}`);
  console.log("FLOW OK");
} catch (e) {
  console.error(`FLOW FAILED: ${e.stack || e}`);
  process.exitCode = 1;
} finally {
  if (ctx) await ctx.close();
  rmSync(profile, { recursive: true, force: true });
}
