// The page in headless Chromium, driven over the DevTools protocol: web/
// served by `python3 -m http.server`, 100 MNIST test digits drawn onto the
// canvas as pixel fills (10×10 per pixel) for each model of the picker, a
// stroke drawn with the mouse, an empty pad, dropped files. Checks:
// - the page's classes equal `bnn classify`'s on the page's own
//   preprocessed 28×28 images (window.bnnLast.image);
// - its accuracy against the labels is within 2 points of the CLI's on the
//   raw images;
// - the first classification is shown within 1 s of the page's load;
// - an empty pad and a dropped non-image file give a clear message, and no
//   exception is thrown anywhere;
// and saves a screenshot. Needs Node's WebSocket: run with
// `node --experimental-websocket` on Node 20 and 21 (scripts/test-wasm does).
//
//   node --experimental-websocket web/test/browser-test.mjs BNN_BINARY OUT_DIR
import { spawn, execFileSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync, mkdirSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { gunzipSync } from "node:zlib";

const [bnn, out] = process.argv.slice(2);
if (!bnn || !out) {
  console.error("usage: node --experimental-websocket web/test/browser-test.mjs BNN_BINARY OUT_DIR");
  process.exit(2);
}
if (typeof WebSocket === "undefined") {
  console.error("browser-test: this Node has no WebSocket: run it with --experimental-websocket (Node 20.10+)");
  process.exit(2);
}
mkdirSync(out, { recursive: true });
const COUNT = 100;
const MODELS = ["mnist-512.bnn", "mnist-512-u8.bnn", "mnist-cnn-small.bnn"];
const CHROMIUM = process.env.CHROMIUM ?? "/usr/bin/chromium";
let failures = 0;
const fail = (msg) => {
  failures += 1;
  console.error(`FAIL ${msg}`);
};
const ok = (msg) => console.log(`ok   ${msg}`);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function readIdx(stem) {
  const path = `data/mnist/${stem}`;
  if (existsSync(path)) return readFileSync(path);
  return gunzipSync(readFileSync(`${path}.gz`));
}
const idx = readIdx("t10k-images-idx3-ubyte");
const raw = idx.subarray(16, 16 + COUNT * 784);
const labels = readIdx("t10k-labels-idx1-ubyte").subarray(8, 8 + COUNT);

/** An IDX image file of `n` 28×28 images. */
function writeIdx(path, pixels, n) {
  const header = Buffer.alloc(16);
  header.writeUInt32BE(0x803, 0);
  header.writeUInt32BE(n, 4);
  header.writeUInt32BE(28, 8);
  header.writeUInt32BE(28, 12);
  writeFileSync(path, Buffer.concat([header, Buffer.from(pixels)]));
}

function cliClasses(model, idxPath) {
  const csv = execFileSync(bnn, ["classify", `weights/${model}`, idxPath, "--format", "csv", "--classes-only"], {
    encoding: "utf8",
  });
  return csv.trim().split("\n").slice(1).map((row) => Number(row.split(",")[2]));
}

const freePort = () =>
  new Promise((resolve) => {
    const s = createServer();
    s.listen(0, "127.0.0.1", () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });

async function waitFor(what, check, ms = 10000) {
  const end = Date.now() + ms;
  for (;;) {
    const v = await check();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(10);
  }
}

// The static server and the browser.
const port = await freePort();
const server = spawn("python3", ["-m", "http.server", String(port), "--bind", "127.0.0.1", "-d", "web"], {
  stdio: "ignore",
});
const profile = mkdtempSync(join(tmpdir(), "bnn-chromium-"));
const chrome = spawn(CHROMIUM, [
  "--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-extensions",
  "--remote-debugging-port=0", `--user-data-dir=${profile}`, "--window-size=1000,640", "about:blank",
], { stdio: ["ignore", "ignore", "pipe"] });
const cleanup = () => {
  chrome.kill();
  server.kill();
  try {
    rmSync(profile, { recursive: true, force: true });
  } catch {}
};
process.on("exit", cleanup);

let stderr = "";
chrome.stderr.on("data", (d) => {
  stderr += d;
});
const wsUrl = await waitFor("Chromium's DevTools address", async () => {
  const m = stderr.match(/DevTools listening on (ws:\/\/\S+)/);
  return m?.[1];
}, 20000).catch((e) => {
  throw new Error(`${e.message}; is chromium installed (${CHROMIUM})? stderr: ${stderr.slice(-500)}`);
});
await waitFor("the static server", async () => {
  try {
    return (await fetch(`http://127.0.0.1:${port}/index.html`)).ok;
  } catch {
    return false;
  }
});

// One page's DevTools session.
const debugPort = new URL(wsUrl).port;
const targets = await (await fetch(`http://127.0.0.1:${debugPort}/json/list`)).json();
const page = targets.find((t) => t.type === "page");
const ws = new WebSocket(page.webSocketDebuggerUrl);
await new Promise((resolve, reject) => {
  ws.onopen = resolve;
  ws.onerror = reject;
});
let nextId = 1;
const waiting = new Map();
const problems = [];
ws.onmessage = (event) => {
  const msg = JSON.parse(event.data);
  if (msg.id && waiting.has(msg.id)) {
    const { resolve, reject } = waiting.get(msg.id);
    waiting.delete(msg.id);
    if (msg.error) reject(new Error(JSON.stringify(msg.error)));
    else resolve(msg.result);
  } else if (msg.method === "Runtime.exceptionThrown") {
    problems.push(`exception: ${msg.params.exceptionDetails.exception?.description ?? msg.params.exceptionDetails.text}`);
  } else if (msg.method === "Runtime.consoleAPICalled" && msg.params.type === "error") {
    problems.push(`console.error: ${msg.params.args.map((a) => a.value ?? a.description).join(" ")}`);
  } else if (msg.method === "Log.entryAdded" && msg.params.entry.level === "error") {
    problems.push(`log: ${msg.params.entry.text} ${msg.params.entry.url ?? ""}`);
  }
};
const send = (method, params = {}) =>
  new Promise((resolve, reject) => {
    const id = nextId++;
    waiting.set(id, { resolve, reject });
    ws.send(JSON.stringify({ id, method, params }));
  });
/** Evaluates `expr` in the page (awaiting a promise); its JSON value. */
async function page$(expr) {
  const r = await send("Runtime.evaluate", { expression: expr, awaitPromise: true, returnByValue: true });
  if (r.exceptionDetails) throw new Error(`in page: ${r.exceptionDetails.exception?.description ?? r.exceptionDetails.text}`);
  return r.result.value;
}
await send("Runtime.enable");
await send("Page.enable");
await send("Log.enable");
await send("Emulation.setDeviceMetricsOverride", { width: 960, height: 560, deviceScaleFactor: 1, mobile: false });

// Draws a 28×28 digit as 10×10 fills and classifies it: the page's result.
const drawDigit = (pixels) => `(() => {
  const px = ${JSON.stringify(Array.from(pixels))};
  const c = document.getElementById("canvas").getContext("2d");
  c.fillStyle = "#000"; c.fillRect(0, 0, 280, 280);
  px.forEach((v, i) => { if (v) { c.fillStyle = "rgb(" + v + "," + v + "," + v + ")"; c.fillRect((i % 28) * 10, Math.floor(i / 28) * 10, 10, 10); } });
  return window.bnnClassify();
})()`;

try {
  await send("Page.navigate", { url: `http://127.0.0.1:${port}/index.html` });
  await waitFor("the page's engine and first model", () => page$("window.bnnReady === true"));
  const first = await page$(drawDigit(raw.subarray(0, 784)));
  if (first && first.at < 1000) ok(`first classification shown ${first.at.toFixed(0)} ms after the page's load`);
  else fail(`first classification at ${first?.at} ms after load (limit 1000 ms)`);
  const kernel = first?.kernel;

  for (const model of MODELS) {
    await page$(`(async () => { const p = document.getElementById("model"); p.value = ${JSON.stringify(model)};
      p.dispatchEvent(new Event("change")); })()`);
    await waitFor(`model ${model}`, () => page$(`document.getElementById("stats").textContent.includes(${JSON.stringify(model.replace(".bnn", ""))}) || window.bnnLast?.model === ${JSON.stringify(model)}`));
    const images = new Uint8Array(COUNT * 784);
    const pageClasses = [];
    for (let i = 0; i < COUNT; i++) {
      const r = await page$(drawDigit(raw.subarray(i * 784, (i + 1) * 784)));
      if (!r || r.model !== model) throw new Error(`${model}: image ${i} gave no result (${JSON.stringify(r)?.slice(0, 200)})`);
      images.set(r.image, i * 784);
      pageClasses.push(r.klass);
    }
    const mine = join(out, `page-${model}.idx`);
    writeIdx(mine, images, COUNT);
    const rawIdx = join(out, "raw.idx");
    writeIdx(rawIdx, raw, COUNT);
    const cliOnPage = cliClasses(model, mine);
    const cliOnRaw = cliClasses(model, rawIdx);
    const differ = pageClasses.findIndex((c, i) => c !== cliOnPage[i]);
    if (differ >= 0) fail(`${model}: image ${differ}: page class ${pageClasses[differ]}, bnn classify ${cliOnPage[differ]} on the page's image`);
    else ok(`${model}: the page's ${COUNT} classes equal bnn classify's on the page's 28x28 images (kernel ${kernel})`);
    const acc = (cls) => (100 * cls.filter((c, i) => c === labels[i]).length) / COUNT;
    const [a, b] = [acc(pageClasses), acc(cliOnRaw)];
    const line = `${model}: page accuracy ${a.toFixed(0)} % on ${COUNT} drawn digits, bnn classify ${b.toFixed(0)} % on the raw images`;
    if (Math.abs(a - b) <= 2) ok(line);
    else fail(`${line} (more than 2 points apart)`);
  }

  // A stroke with the mouse: a vertical line is a 1.
  await page$(`document.getElementById("clear").click()`);
  const box = await page$(`(() => { const r = document.getElementById("canvas").getBoundingClientRect(); return [r.left, r.top]; })()`);
  const mouse = (type, x, y) => send("Input.dispatchMouseEvent", {
    type, x: box[0] + x, y: box[1] + y, button: "left", buttons: type === "mouseReleased" ? 0 : 1, clickCount: 1,
  });
  await mouse("mousePressed", 140, 50);
  for (let y = 50; y <= 230; y += 10) await mouse("mouseMoved", 140 + (y - 50) / 30, y);
  await mouse("mouseReleased", 146, 230);
  const stroke = await waitFor("the stroke's classification", () => page$(`window.bnnLast && !window.bnnLast.empty && window.bnnLast`), 3000);
  if (stroke.klass === 1) ok(`a vertical stroke drawn with the mouse is classified 1`);
  else fail(`a vertical stroke drawn with the mouse is classified ${stroke.klass}`);

  // An empty pad.
  await page$(`document.getElementById("clear").click()`);
  const empty = await page$(`[window.bnnLast.empty === true, document.getElementById("message").textContent, document.getElementById("answer").textContent]`);
  if (empty[0] && /empty/.test(empty[1]) && empty[2] === "–") ok(`an empty pad says: ${empty[1]}`);
  else fail(`empty pad: ${JSON.stringify(empty)}`);

  // Dropped files: a text file, then an image (dark ink on white, as a photo of paper).
  const drop = (fileExpr) => page$(`(async () => {
    const dt = new DataTransfer(); dt.items.add(${fileExpr});
    document.getElementById("canvas").dispatchEvent(new DragEvent("drop", { dataTransfer: dt, bubbles: true, cancelable: true }));
    await new Promise((r) => setTimeout(r, 300));
    return document.getElementById("message").textContent;
  })()`);
  const text = await drop(`new File(["just some notes"], "notes.txt", { type: "text/plain" })`);
  if (/notes\.txt is not an image/.test(text)) ok(`a dropped text file says: ${text}`);
  else fail(`dropped text file: message '${text}'`);
  const broken = await drop(`new File(["not a png"], "broken.png", { type: "image/png" })`);
  if (/broken\.png could not be read as an image/.test(broken)) ok(`a dropped broken PNG says: ${broken}`);
  else fail(`dropped broken PNG: message '${broken}'`);
  const digit = Array.from(raw.subarray(0, 784));
  const png = `await (async () => {
    const px = ${JSON.stringify(digit)};
    const c = new OffscreenCanvas(28, 28); const g = c.getContext("2d"); const d = g.createImageData(28, 28);
    px.forEach((v, i) => d.data.set([255 - v, 255 - v, 255 - v, 255], 4 * i)); g.putImageData(d, 0, 0);
    return new File([await c.convertToBlob({ type: "image/png" })], "seven.png", { type: "image/png" });
  })()`;
  await drop(png);
  const dropped = await page$(`window.bnnLast`);
  if (dropped && !dropped.empty && dropped.klass === labels[0]) ok(`a dropped PNG (dark ink on white) is classified ${dropped.klass}`);
  else fail(`dropped PNG: ${JSON.stringify(dropped)?.slice(0, 200)}, label ${labels[0]}`);

  // The screenshot: a test digit on the default model.
  await page$(`(async () => { const p = document.getElementById("model"); p.value = "mnist-512.bnn"; p.dispatchEvent(new Event("change")); await new Promise((r) => setTimeout(r, 100)); })()`);
  await page$(drawDigit(raw.subarray(0, 784)));
  await sleep(100);
  const shot = await send("Page.captureScreenshot", { format: "png" });
  writeFileSync(join(out, "screenshot.png"), Buffer.from(shot.data, "base64"));
  ok(`screenshot in ${join(out, "screenshot.png")}`);
} catch (e) {
  fail(e.message);
}
if (problems.length) fail(`the page reported: ${problems.join("; ")}`);
else ok("no exception or error logged by the page");
ws.close();
cleanup();
if (failures) {
  console.error(`${failures} failure(s)`);
  process.exit(1);
}
