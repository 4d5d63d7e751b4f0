// The page: a drawing pad, a model picker, the class and ten score bars,
// updated while drawing. Everything is fetched relative to the page, so
// web/ works from any static server, offline.
//
// For tests (web/test/browser-test.mjs), the page keeps its last result in
// window.bnnLast ({ image: the 784 preprocessed bytes, klass, scores, ms,
// model, kernel, at: performance.now() when shown }), sets window.bnnReady
// once the engine and the first model are loaded, and exposes the one
// classification entry point as window.bnnClassify().
import { Engine, hasSimd } from "./bnn.js";

const canvas = document.getElementById("canvas");
const ctx = canvas.getContext("2d", { willReadFrequently: true });
const preview = document.getElementById("preview").getContext("2d");
const picker = document.getElementById("model");
const answer = document.getElementById("answer");
const bars = document.getElementById("bars");
const message = document.getElementById("message");
const stats = document.getElementById("stats");

let engine = null;
let kernel = "";
const models = new Map(); // file name → { model, fileBytes }
let current = null;

function say(text, isError = false) {
  message.textContent = text;
  message.className = isError ? "error" : "info";
}

function clearPad() {
  ctx.fillStyle = "#000";
  ctx.fillRect(0, 0, canvas.width, canvas.height);
}

/** Ten rows of digit, bar and score, built once. */
const rows = Array.from({ length: 10 }, (_, c) => {
  const label = document.createElement("span");
  label.textContent = c;
  const bar = document.createElement("div");
  bar.className = "bar";
  bar.style.width = "0";
  const score = document.createElement("span");
  score.className = "score";
  bars.append(label, bar, score);
  return { bar, score };
});

function showScores(scores, best) {
  const lo = Math.min(...scores);
  const hi = Math.max(...scores);
  rows.forEach((r, c) => {
    const v = scores ? scores[c] : null;
    r.bar.style.width = v === null ? "0" : `${Math.max(2, (200 * (v - lo)) / (hi - lo || 1))}px`;
    r.bar.className = c === best ? "bar best" : "bar";
    r.score.textContent = v === null ? "" : v.toFixed(1);
  });
}

function resetResult() {
  answer.textContent = "–";
  rows.forEach((r) => {
    r.bar.style.width = "0";
    r.bar.className = "bar";
    r.score.textContent = "";
  });
  preview.clearRect(0, 0, 28, 28);
}

function showPreview(image) {
  const data = preview.createImageData(28, 28);
  image.forEach((v, i) => {
    data.data.set([v, v, v, 255], 4 * i);
  });
  preview.putImageData(data, 0, 0);
}

function showStats(ms) {
  const { model, fileBytes } = current;
  stats.textContent =
    `${ms.toFixed(3)} ms per classification (preprocessing included), kernel ${kernel}` +
    ` · model ${model.description}: ${fileBytes.toLocaleString("en")} bytes on disk,` +
    ` ${model.memoryBytes.toLocaleString("en")} bytes in memory`;
}

/** Classifies what the pad shows; the one entry point. */
function classify() {
  if (!engine || !current) return null;
  try {
    const t0 = performance.now();
    const { data } = ctx.getImageData(0, 0, canvas.width, canvas.height);
    const image = engine.preprocess(data, canvas.width, canvas.height);
    if (image === null) {
      resetResult();
      window.bnnLast = { empty: true, at: performance.now() };
      say("The pad is empty: draw a digit, or drop an image of one.");
      return null;
    }
    const { classes, scores } = current.model.classify(image, 1);
    const ms = performance.now() - t0;
    const klass = classes[0];
    answer.textContent = klass;
    showScores(Array.from(scores), klass);
    showPreview(image);
    showStats(ms);
    say("");
    window.bnnLast = {
      image: Array.from(image), klass, scores: Array.from(scores), ms,
      model: picker.value, kernel, at: performance.now(),
    };
    return window.bnnLast;
  } catch (e) {
    say(`Classification failed: ${e.message}`, true);
    return null;
  }
}
window.bnnClassify = classify;

let pending = false;
function classifySoon() {
  if (pending) return;
  pending = true;
  requestAnimationFrame(() => {
    pending = false;
    classify();
  });
}

// Drawing: pointer events cover mouse, pen and touch.
let last = null;
function point(e) {
  const r = canvas.getBoundingClientRect();
  return [((e.clientX - r.left) * canvas.width) / r.width, ((e.clientY - r.top) * canvas.height) / r.height];
}
canvas.addEventListener("pointerdown", (e) => {
  canvas.setPointerCapture(e.pointerId);
  last = point(e);
  stroke(last, last);
});
canvas.addEventListener("pointermove", (e) => {
  if (!last) return;
  const p = point(e);
  stroke(last, p);
  last = p;
});
for (const type of ["pointerup", "pointercancel"]) {
  canvas.addEventListener(type, () => {
    last = null;
  });
}
function stroke(a, b) {
  ctx.strokeStyle = "#fff";
  ctx.lineWidth = 18;
  ctx.lineCap = "round";
  ctx.lineJoin = "round";
  ctx.beginPath();
  ctx.moveTo(...a);
  ctx.lineTo(...b);
  ctx.stroke();
  classifySoon();
}

document.getElementById("clear").addEventListener("click", () => {
  clearPad();
  classify();
});

// Dropping a file: an image is drawn onto the pad, fitted and centred;
// anything else is refused with a message.
canvas.addEventListener("dragover", (e) => {
  e.preventDefault();
  canvas.classList.add("dragover");
});
canvas.addEventListener("dragleave", () => canvas.classList.remove("dragover"));
canvas.addEventListener("drop", async (e) => {
  e.preventDefault();
  canvas.classList.remove("dragover");
  const file = e.dataTransfer?.files?.[0];
  if (!file) {
    say("Nothing to use in what was dropped: drop an image file.", true);
    return;
  }
  if (!file.type.startsWith("image/")) {
    say(`${file.name} is not an image (${file.type || "unknown type"}): drop a PNG, JPEG or similar.`, true);
    return;
  }
  let bitmap;
  try {
    bitmap = await createImageBitmap(file);
  } catch {
    say(`${file.name} could not be read as an image.`, true);
    return;
  }
  clearPad();
  const scale = Math.min(canvas.width / bitmap.width, canvas.height / bitmap.height);
  const w = bitmap.width * scale;
  const h = bitmap.height * scale;
  ctx.drawImage(bitmap, (canvas.width - w) / 2, (canvas.height - h) / 2, w, h);
  classify();
});

async function useModel(name) {
  if (!models.has(name)) {
    const response = await fetch(`models/${name}`);
    if (!response.ok) throw new Error(`models/${name}: HTTP ${response.status}`);
    const bytes = new Uint8Array(await response.arrayBuffer());
    models.set(name, { model: engine.load(name, bytes), fileBytes: bytes.length });
  }
  current = models.get(name);
}

picker.addEventListener("change", async () => {
  try {
    await useModel(picker.value);
    classify();
  } catch (e) {
    say(`Cannot load ${picker.value}: ${e.message}`, true);
  }
});

async function start() {
  clearPad();
  try {
    const file = hasSimd() ? "bnn-simd.wasm" : "bnn-portable.wasm";
    const response = await fetch(file);
    if (!response.ok) throw new Error(`${file}: HTTP ${response.status} (run scripts/build-wasm)`);
    engine = await Engine.fromBytes(await response.arrayBuffer());
    kernel = engine.kernel();
    await useModel(picker.value);
    say("Draw a digit, or drop an image of one.");
    window.bnnReady = true;
  } catch (e) {
    say(`Cannot start: ${e.message}`, true);
  }
}
start();
