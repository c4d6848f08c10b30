#!/usr/bin/env node
// Drive the page in headless Chromium: load a model and images through its file inputs, as a
// person would, and save the pixels the page computed. The project's tests use it to compare
// the page with Python's ONNX Runtime, and it times the page (--repeat).
//
//   node drive.mjs --url http://127.0.0.1:8000/web/ --model m.onnx --image a.png [--image b.png]
//                  [--out DIR] [--repeat N] [--chromium /usr/bin/chromium]
//
// Prints one JSON object on stdout: the page's status and, per image, its size and times (ms);
// with --out, writes DIR/<i>.restored.bin (H*W*3), <i>.mask.bin (H*W), <i>.predicted.bin (H*W*3).
// Requests to any other origin are blocked and listed under "external" (there should be none).
// Exit 0 when every image was restored, 1 when the page reported an error (the JSON says which).

import fs from "node:fs";
import path from "node:path";
import { parseArgs } from "node:util";

import { chromium } from "playwright-core";

const { values: opts } = parseArgs({
  options: {
    url: { type: "string" },
    model: { type: "string" },
    image: { type: "string", multiple: true, default: [] },
    out: { type: "string" },
    repeat: { type: "string", default: "0" },
    chromium: { type: "string", default: process.env.CHROMIUM ?? "/usr/bin/chromium" },
    timeout: { type: "string", default: "60000" },
  },
});
if (!opts.url || !opts.model) {
  console.error("usage: node drive.mjs --url URL --model FILE [--image FILE ...] [--out DIR] [--repeat N]");
  process.exit(2);
}
const timeout = Number(opts.timeout);

// Waits until the page leaves the busy states; returns its state and error.
async function settled(page) {
  await page.waitForFunction(
    () => window.restoreDemo && ["ready", "done", "error", "idle"].includes(window.restoreDemo.state),
    null,
    { timeout },
  );
  return page.evaluate(() => ({ state: window.restoreDemo.state, error: window.restoreDemo.error }));
}

// Uint8Array on the page -> Buffer here (base64 in chunks: evaluate results must be JSON).
async function fetchBytes(page, key) {
  const b64 = await page.evaluate((k) => {
    const bytes = window.restoreDemo.result[k];
    let s = "";
    for (let i = 0; i < bytes.length; i += 0x8000) s += String.fromCharCode.apply(null, bytes.subarray(i, i + 0x8000));
    return btoa(s);
  }, key);
  return Buffer.from(b64, "base64");
}

const report = { url: opts.url, model: path.basename(opts.model), state: null, error: null, images: [] };
const browser = await chromium.launch({ executablePath: opts.chromium, headless: true, args: ["--no-sandbox", "--disable-dev-shm-usage"] });
try {
  const page = await browser.newPage();
  // The page must need nothing but its own origin: refuse (and report) anything else.
  const origin = new URL(opts.url).origin;
  report.external = [];
  await page.route("**/*", (route) => {
    const url = route.request().url();
    if (new URL(url).origin === origin) return route.continue();
    report.external.push(url);
    return route.abort();
  });
  page.on("pageerror", (e) => console.error(`page error: ${e.message}`));
  page.on("console", (m) => m.type() === "error" && console.error(`page console: ${m.text()}`));
  await page.goto(opts.url, { waitUntil: "load", timeout });
  await page.waitForFunction(() => window.restoreDemo !== undefined, null, { timeout });

  await page.setInputFiles("#model-file", opts.model);
  await page.waitForFunction(() => window.restoreDemo.state !== "idle", null, { timeout });
  Object.assign(report, await settled(page));

  for (const [i, image] of opts.image.entries()) {
    if (report.state === "error") break;
    await page.evaluate(() => { window.restoreDemo.state = "waiting"; window.restoreDemo.result = null; });
    await page.setInputFiles("#image-file", image);
    await page.waitForFunction(() => window.restoreDemo.state !== "waiting", null, { timeout });
    Object.assign(report, await settled(page));
    if (report.state !== "done") break;
    const r = await page.evaluate(() => {
      const { name, width, height, ms, totalMs } = window.restoreDemo.result;
      return { name, width, height, ms, totalMs };
    });
    r.reruns = [];
    for (let k = 0; k < Number(opts.repeat); k++) r.reruns.push(await page.evaluate(() => window.restoreDemo.rerun()));
    if (opts.out) {
      fs.mkdirSync(opts.out, { recursive: true });
      for (const key of ["restored", "mask", "predicted"]) {
        fs.writeFileSync(path.join(opts.out, `${i}.${key}.bin`), await fetchBytes(page, key));
      }
    }
    report.images.push(r);
  }
  report.status = await page.evaluate(() => document.getElementById("status").textContent);
  Object.assign(report, await page.evaluate(() => {
    const { provider, providerNote, isolated, threads } = window.restoreDemo;
    return { provider, providerNote, isolated, threads };
  }));
  if (opts.out) await page.screenshot({ path: path.join(opts.out, "page.png"), fullPage: true });
} finally {
  await browser.close();
}
console.log(JSON.stringify(report));
process.exit(report.state === "error" || report.images.length < opts.image.length ? 1 : 0);
