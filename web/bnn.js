// The bnn engine's WebAssembly module (crates/bnn-wasm) behind a small
// JavaScript API, shared by the page (app.js) and the Node tests
// (web/test/). The module owns every buffer: bytes go in through the
// address bnn_input returns, results come out of the addresses the module
// reports. Memory can grow on any call, so every access takes a fresh view.

/** A tiny module with one SIMD instruction: valid only where the engine
 * supports WebAssembly SIMD. */
const SIMD_PROBE = new Uint8Array([
  0, 97, 115, 109, 1, 0, 0, 0, 1, 5, 1, 96, 0, 1, 123, 3, 2, 1, 0, 10, 10, 1, 8, 0, 65, 0,
  253, 15, 253, 98, 11,
]);

/** Whether this engine runs WebAssembly SIMD (and so bnn-simd.wasm). */
export function hasSimd() {
  return WebAssembly.validate(SIMD_PROBE);
}

export class Engine {
  /** Instantiates the module from its bytes. */
  static async fromBytes(bytes) {
    const { instance } = await WebAssembly.instantiate(bytes, {});
    return new Engine(instance.exports);
  }

  constructor(exports) {
    this.x = exports;
  }

  bytes() {
    return new Uint8Array(this.x.memory.buffer);
  }

  /** The module's last message (an error, or what bnn_kernel wrote). */
  message() {
    const ptr = this.x.bnn_message();
    const len = this.x.bnn_message_len();
    return new TextDecoder().decode(this.bytes().slice(ptr, ptr + len));
  }

  /** Copies `data` (a Uint8Array) into the module's input buffer. */
  put(data) {
    const ptr = this.x.bnn_input(data.length);
    this.bytes().set(data, ptr);
  }

  /** The kernel classifications run with: "simd128" or "scalar". */
  kernel() {
    this.x.bnn_kernel();
    return this.message();
  }

  /** Classify with the portable kernel (true) or the module's best. */
  useScalar(on) {
    this.x.bnn_use_scalar(on ? 1 : 0);
  }

  /** Loads a .bnn file's bytes; `name` starts the error messages. */
  load(name, data) {
    const encoded = new TextEncoder().encode(name);
    const at = this.x.bnn_name(encoded.length);
    this.bytes().set(encoded, at);
    this.put(data);
    const handle = this.x.bnn_load();
    if (handle === 0) throw new Error(this.message());
    return new Model(this, handle);
  }

  /** The 28×28 MNIST digit in a canvas's RGBA pixels, or null when
   * nothing is drawn. */
  preprocess(rgba, width, height) {
    this.put(rgba);
    const got = this.x.bnn_preprocess_rgba(width, height);
    if (got < 0) throw new Error(this.message());
    if (got === 0) return null;
    const ptr = this.x.bnn_image();
    return this.bytes().slice(ptr, ptr + 784);
  }
}

export class Model {
  constructor(engine, handle) {
    const x = engine.x;
    this.engine = engine;
    this.handle = handle;
    this.inputs = x.bnn_model_inputs(handle);
    this.classes = x.bnn_model_classes(handle);
    this.memoryBytes = x.bnn_model_memory(handle);
    x.bnn_model_describe(handle);
    this.description = engine.message();
  }

  /** Classifies `n` images (`n × inputs` bytes): copies of the classes
   * (Uint32Array) and scores (Float32Array, `n × classes`). */
  classify(images, n) {
    const e = this.engine;
    e.put(images);
    if (e.x.bnn_classify(this.handle, n) !== 0) throw new Error(e.message());
    const buffer = e.x.memory.buffer;
    return {
      classes: new Uint32Array(buffer, e.x.bnn_classes(), n).slice(),
      scores: new Float32Array(buffer, e.x.bnn_scores(), n * this.classes).slice(),
    };
  }

  unload() {
    this.engine.x.bnn_unload(this.handle);
  }
}
