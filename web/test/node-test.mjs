// The WebAssembly engine against the native one, in Node: every MNIST test
// image through every shipped model (each .bnn in weights/: binary and u8
// first layers, dense and convolutional), with each module (simd128, and
// the portable build when present) and, in the SIMD module, its scalar
// kernel too; classes must equal `bnn classify`'s and scores be the same
// f32 bits as its `--format npy` output. Then the
// speed of the SIMD module on mnist-512.bnn against the native AVX2 kernel,
// one thread each, on this machine, in this run.
//
// Run by scripts/test-wasm, which builds what it needs and passes:
//   node web/test/node-test.mjs BNN_BINARY OUT_DIR [ODD_MODELS_DIR]
// ODD_MODELS_DIR holds the random models of crates/bnn-wasm's odd_models
// example (widths that are not whole vectors), compared the same way.
import { execFileSync } from "node:child_process";
import { existsSync, readFileSync, readdirSync, writeFileSync, mkdirSync } from "node:fs";
import { basename } from "node:path";
import { gunzipSync } from "node:zlib";
import { Engine } from "../bnn.js";

const [bnn, out, oddDir] = process.argv.slice(2);
if (!bnn || !out) {
  console.error("usage: node web/test/node-test.mjs BNN_BINARY OUT_DIR");
  process.exit(2);
}
mkdirSync(out, { recursive: true });
// Every shipped model, listed rather than named, so that a model added to
// weights/ is tested without editing this list.
const MODELS = readdirSync("weights").filter((f) => f.endsWith(".bnn")).sort().map((m) => `weights/${m}`);
if (oddDir) {
  for (const m of readdirSync(oddDir).filter((f) => f.endsWith(".bnn")).sort()) MODELS.push(`${oddDir}/${m}`);
}
// The page's models (scripts/build-wasm) at least: an empty listing is a
// failure, not a pass.
for (const m of ["mnist-512.bnn", "mnist-512-u8.bnn", "mnist-cnn-small.bnn"]) {
  if (!MODELS.includes(`weights/${m}`)) {
    console.error(`FAIL weights/${m} is missing`);
    process.exit(1);
  }
}
/** The speed floor: images/s of the SIMD module over native AVX2's. */
const FLOOR = 0.25;
let failures = 0;
const fail = (msg) => {
  failures += 1;
  console.error(`FAIL ${msg}`);
};

function readIdx(stem) {
  const path = `data/mnist/${stem}`;
  if (existsSync(path)) return readFileSync(path);
  if (existsSync(`${path}.gz`)) return gunzipSync(readFileSync(`${path}.gz`));
  throw new Error(`${path} (or .gz) is missing: run scripts/test once, or bnn fetch`);
}

const idx = readIdx("t10k-images-idx3-ubyte");
const N = idx.readUInt32BE(4);
const images = new Uint8Array(idx.buffer, idx.byteOffset + 16, N * 784);
const labels = readIdx("t10k-labels-idx1-ubyte").subarray(8);

/** The native engine's classes and scores, from `bnn classify --format
 * npy`: records of an int64 class and the model's f32 scores, read as
 * stored, so that scores compare bit for bit (no decimal round trip). */
function native(model, classCount) {
  const path = `${out}/${basename(model)}.npy`;
  execFileSync(bnn, ["classify", model, "data/mnist/t10k-images-idx3-ubyte", "--format", "npy", "-o", path]);
  const npy = readFileSync(path);
  if (npy.toString("latin1", 0, 6) !== "\x93NUMPY" || npy[6] !== 1) {
    throw new Error(`${path}: not a version 1 .npy file`);
  }
  const start = 10 + npy.readUInt16LE(8);
  const header = npy.toString("latin1", 10, start);
  const descr = `[('class', '<i8'), ('scores', '<f4', (${classCount},))]`;
  const rows = Number(/'shape': \((\d+),\)/.exec(header)?.[1]);
  if (!header.includes(`'descr': ${descr},`) || rows !== N) {
    throw new Error(`${path}: header ${header.trim()}, expected ${N} records ${descr}`);
  }
  const record = 8 + 4 * classCount;
  if (npy.length !== start + rows * record) {
    throw new Error(`${path}: ${npy.length} bytes, expected ${start + rows * record}`);
  }
  const classes = new Uint32Array(rows);
  const scores = new Float32Array(rows * classCount);
  const view = new DataView(npy.buffer, npy.byteOffset, npy.length);
  for (let i = 0; i < rows; i++) {
    const at = start + i * record;
    classes[i] = Number(view.getBigInt64(at, true));
    for (let c = 0; c < classCount; c++) scores[i * classCount + c] = view.getFloat32(at + 8 + 4 * c, true);
  }
  return { classes, scores };
}

function compare(what, got, want) {
  if (got.classes.length !== want.classes.length) {
    fail(`${what}: ${got.classes.length} classes, native ${want.classes.length}`);
    return false;
  }
  const cls = got.classes.findIndex((c, i) => c !== want.classes[i]);
  // The same 32 bits: -0 is not +0, and a NaN equals only the same NaN.
  const bits = (f) => new Uint32Array(f.buffer, f.byteOffset, f.length);
  const [g, w] = [bits(got.scores), bits(want.scores)];
  const sc = g.length !== w.length ? Math.min(g.length, w.length) : g.findIndex((b, i) => b !== w[i]);
  const hex = (b) => (b === undefined ? "none" : `0x${b.toString(16).padStart(8, "0")}`);
  if (cls >= 0) fail(`${what}: image ${cls} class ${got.classes[cls]}, native ${want.classes[cls]}`);
  else if (sc >= 0) {
    const k = want.scores.length / want.classes.length;
    fail(`${what}: image ${Math.floor(sc / k)} score ${sc % k} is ${got.scores[sc]} (${hex(g[sc])}),` +
      ` native ${want.scores[sc]} (${hex(w[sc])})`);
  } else {
    const right = got.classes.filter((c, i) => c === labels[i]).length;
    console.log(`ok   ${what}: ${N} classes and ${got.scores.length} scores identical` +
      ` (accuracy ${(100 * right / N).toFixed(2)} %)`);
    return true;
  }
  return false;
}

const modules = [["web/bnn-simd.wasm", "simd128"]];
if (existsSync("web/bnn-portable.wasm")) modules.push(["web/bnn-portable.wasm", "scalar"]);
else console.log("note web/bnn-portable.wasm not built (scripts/build-wasm --simd-only): skipped");

const results = { images: N, equality: [], speed: null };
const engines = {};
for (const [file, kernel] of modules) {
  engines[file] = await Engine.fromBytes(readFileSync(file));
  if (engines[file].kernel() !== kernel) {
    fail(`${file} runs kernel ${engines[file].kernel()}, not ${kernel}`);
  }
}
for (const model of MODELS) {
  let want = null;
  for (const [file] of modules) {
    const engine = engines[file];
    const m = engine.load(basename(model), readFileSync(model));
    if (m.inputs !== 784) {
      fail(`${model}: takes ${m.inputs} bytes an image, not an MNIST image's 784`);
      m.unload();
      break;
    }
    want ??= native(model, m.classes);
    const runs = file.includes("simd") ? [false, true] : [false];
    for (const scalar of runs) {
      engine.useScalar(scalar);
      const what = `${model} ${file} kernel ${engine.kernel()}`;
      results.equality.push({ run: what, identical: compare(what, m.classify(images, N), want) });
    }
    engine.useScalar(false);
    m.unload();
  }
}

// Speed: the same 10,000 images, the SIMD module's best of 7 batches
// against `bnn bench`'s median of 5 for the native AVX2 kernel at one
// thread, in three alternating rounds, keeping each side's best round: the
// machine may be shared, and load only ever slows a round down.
{
  const engine = engines["web/bnn-simd.wasm"];
  const m = engine.load("mnist-512.bnn", readFileSync("weights/mnist-512.bnn"));
  m.classify(images, N);
  const json = `${out}/bench.json`;
  let wasm = 0;
  let base = null;
  let hasAvx2 = false;
  for (let round = 0; round < 3; round++) {
    let best = Infinity;
    for (let r = 0; r < 7; r++) {
      const t0 = process.hrtime.bigint();
      m.classify(images, N);
      best = Math.min(best, Number(process.hrtime.bigint() - t0) / 1e9);
    }
    wasm = Math.max(wasm, N / best);
    execFileSync(bnn, [
      "bench", "weights/mnist-512.bnn", "--threads", "1", "--repeat", "5", "--single", "10",
      "--json", json,
    ], { stdio: "ignore" });
    const rows = JSON.parse(readFileSync(json, "utf8")).throughput
      .filter((t) => t.engine === "1-bit" && t.threads === 1);
    const avx2 = rows.find((t) => t.kernel === "avx2");
    hasAvx2 = Boolean(avx2);
    const row = avx2 ?? rows[0];
    if (!base || row.images_per_s > base.images_per_s) base = row;
  }
  const ratio = wasm / base.images_per_s;
  results.speed = {
    wasm_simd128_images_per_s: wasm,
    native_kernel: base.kernel,
    native_images_per_s: base.images_per_s,
    ratio,
  };
  const line = `mnist-512.bnn, one thread: wasm simd128 ${Math.round(wasm)} images/s, ` +
    `native ${base.kernel} ${Math.round(base.images_per_s)} images/s: ` +
    `${(100 * ratio).toFixed(1)} % (floor ${100 * FLOOR} %)`;
  if (!hasAvx2) console.log(`note this CPU has no AVX2 kernel: compared with ${base.kernel}`);
  if (ratio < FLOOR) fail(line);
  else console.log(`ok   ${line}`);
}
writeFileSync(`${out}/results.json`, JSON.stringify(results, null, 2));
if (failures) {
  console.error(`${failures} failure(s)`);
  process.exit(1);
}
