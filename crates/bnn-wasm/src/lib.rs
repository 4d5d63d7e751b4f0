//! # bnn-wasm: the engine in a web page
//!
//! The inference engine (`bnn-core` without threads) built as a
//! WebAssembly module with a plain C ABI, so that a page loads it with
//! `WebAssembly.instantiate` alone: no bindings generator, no JavaScript
//! glue beyond `web/bnn.js`.
//!
//! # Calling convention
//!
//! The module owns every buffer. JavaScript asks for room with
//! [`abi::bnn_input`] (or [`abi::bnn_name`]), which returns an address in
//! the module's memory, writes its bytes there, then calls the function
//! that reads them. Results (classes, scores, the preprocessed image, a
//! message) are read back the same way from the addresses the module
//! reports. Memory may grow on any call, so JavaScript takes a fresh view
//! of `memory.buffer` after each one. Every failure returns a negative
//! number (or 0 for a handle) and leaves a one-line message in
//! [`abi::bnn_message`].
//!
//! Models are read from bytes ([`bnn_core::format::from_bytes`]): the module
//! touches no file system. Which kernel runs is fixed when the module is
//! built: `simd128` in a build with `-C target-feature=+simd128`, the
//! portable `scalar` kernel otherwise (see `scripts/build-wasm`).

use std::cell::RefCell;
use std::path::Path;

use bnn_core::{format, Kernel, Model, RunOptions};

pub mod preprocess;

/// Everything the exported functions share: the module runs on one thread.
#[derive(Default)]
struct State {
    input: Vec<u8>,
    name: Vec<u8>,
    models: Vec<Option<Model>>,
    classes: Vec<u32>,
    scores: Vec<f32>,
    image: Vec<u8>,
    message: String,
    scalar: bool,
}

thread_local! {
    static STATE: RefCell<State> = RefCell::new(State::default());
}

fn with<R>(f: impl FnOnce(&mut State) -> R) -> R {
    STATE.with(|s| f(&mut s.borrow_mut()))
}

impl State {
    fn fail(&mut self, message: String) -> i32 {
        self.message = message;
        -1
    }

    fn model(&self, handle: u32) -> Result<&Model, String> {
        (handle as usize)
            .checked_sub(1)
            .and_then(|i| self.models.get(i))
            .and_then(Option::as_ref)
            .ok_or_else(|| format!("no model with handle {handle}"))
    }

    fn kernel(&self) -> Kernel {
        if self.scalar {
            Kernel::Scalar
        } else {
            bnn_core::kernel::active()
        }
    }

    /// The name given with [`abi::bnn_name`], for messages.
    fn source(&self) -> String {
        match String::from_utf8_lossy(&self.name).trim() {
            "" => "model".to_string(),
            name => name.to_string(),
        }
    }
}

/// Loads the model in the input buffer; the handle (from 1) or the error.
pub fn load() -> Result<u32, String> {
    with(|s| {
        let source = s.source();
        let file = format::from_bytes(&s.input, Path::new(&source)).map_err(|e| e.to_string())?;
        s.models.push(Some(file.model));
        Ok(s.models.len() as u32)
    })
}

/// Classifies the first `n` images of the input buffer with `handle`'s
/// model, leaving classes and scores in their buffers.
pub fn classify(handle: u32, n: usize) -> Result<(), String> {
    with(|s| {
        let model = s.model(handle)?;
        let bytes = n
            .checked_mul(model.input_len())
            .filter(|&b| b <= s.input.len())
            .ok_or_else(|| {
                format!(
                    "{n} images of {} bytes do not fit the {} bytes given",
                    model.input_len(),
                    s.input.len()
                )
            })?;
        let options = RunOptions {
            kernel: Some(s.kernel()),
            threads: None,
        };
        let p = model
            .predict_batch_with(&s.input[..bytes], options)
            .map_err(|e| e.to_string())?;
        s.classes = p.classes.iter().map(|&c| c as u32).collect();
        s.scores = p.scores;
        Ok(())
    })
}

/// The exported functions. `#[no_mangle]` is what the workspace's
/// `unsafe_code` lint objects to here (an exported symbol could clash with
/// another); there is no `unsafe` block: JavaScript writes into buffers
/// this module owns, through the addresses it handed out.
#[allow(unsafe_code)]
pub mod abi {
    use super::*;

    /// Room for `len` bytes of input (a model file, images, RGBA pixels),
    /// zeroed; returns its address.
    #[no_mangle]
    pub extern "C" fn bnn_input(len: usize) -> *mut u8 {
        with(|s| {
            s.input.clear();
            s.input.resize(len, 0);
            s.input.as_mut_ptr()
        })
    }

    /// Room for `len` bytes of a name (UTF-8) that messages about the next
    /// model loaded start with; returns its address.
    #[no_mangle]
    pub extern "C" fn bnn_name(len: usize) -> *mut u8 {
        with(|s| {
            s.name.clear();
            s.name.resize(len, 0);
            s.name.as_mut_ptr()
        })
    }

    /// Loads the model whose file is in the input buffer: a handle from 1,
    /// or 0 with the reason in the message.
    #[no_mangle]
    pub extern "C" fn bnn_load() -> u32 {
        load().unwrap_or_else(|e| {
            with(|s| s.fail(e));
            0
        })
    }

    /// Frees a model; its handle is not reused.
    #[no_mangle]
    pub extern "C" fn bnn_unload(handle: u32) {
        with(|s| {
            if let Some(slot) = (handle as usize)
                .checked_sub(1)
                .and_then(|i| s.models.get_mut(i))
            {
                *slot = None;
            }
        })
    }

    /// Bytes per image the model takes, or -1.
    #[no_mangle]
    pub extern "C" fn bnn_model_inputs(handle: u32) -> i32 {
        with(|s| match s.model(handle) {
            Ok(m) => m.input_len() as i32,
            Err(e) => s.fail(e),
        })
    }

    /// The model's number of classes, or -1.
    #[no_mangle]
    pub extern "C" fn bnn_model_classes(handle: u32) -> i32 {
        with(|s| match s.model(handle) {
            Ok(m) => m.num_classes() as i32,
            Err(e) => s.fail(e),
        })
    }

    /// Bytes the loaded model takes in memory (as `bnn info` reports), or -1.
    #[no_mangle]
    pub extern "C" fn bnn_model_memory(handle: u32) -> i32 {
        with(|s| match s.model(handle) {
            Ok(m) => m.memory_bytes() as i32,
            Err(e) => s.fail(e),
        })
    }

    /// Puts the model's shape, layers and input kind into the message
    /// (`784-512-10 d512,d10 u8`); returns its length, or -1.
    #[no_mangle]
    pub extern "C" fn bnn_model_describe(handle: u32) -> i32 {
        with(|s| match s.model(handle) {
            Ok(m) => {
                let shape = m.shape().iter().map(usize::to_string).collect::<Vec<_>>();
                let input = match m.input_encoding() {
                    bnn_core::InputEncoding::U8 => "u8".to_string(),
                    bnn_core::InputEncoding::Binary { threshold } => format!("binary>={threshold}"),
                };
                s.message = format!("{} {} {input}", shape.join("-"), m.arch());
                s.message.len() as i32
            }
            Err(e) => s.fail(e),
        })
    }

    /// Classifies the first `n` images of the input buffer: 0, or -1 with
    /// the reason in the message. Results in [`bnn_classes`] (`n` u32) and
    /// [`bnn_scores`] (`n × classes` f32).
    #[no_mangle]
    pub extern "C" fn bnn_classify(handle: u32, n: usize) -> i32 {
        match classify(handle, n) {
            Ok(()) => 0,
            Err(e) => with(|s| s.fail(e)),
        }
    }

    #[no_mangle]
    pub extern "C" fn bnn_classes() -> *const u32 {
        with(|s| s.classes.as_ptr())
    }

    #[no_mangle]
    pub extern "C" fn bnn_scores() -> *const f32 {
        with(|s| s.scores.as_ptr())
    }

    /// Puts the name of the kernel [`bnn_classify`] runs into the message;
    /// returns its length.
    #[no_mangle]
    pub extern "C" fn bnn_kernel() -> i32 {
        with(|s| {
            s.message = s.kernel().name().to_string();
            s.message.len() as i32
        })
    }

    /// With `scalar` non-zero, classify with the portable kernel instead of
    /// the build's best (tests compare the two).
    #[no_mangle]
    pub extern "C" fn bnn_use_scalar(scalar: i32) {
        with(|s| s.scalar = scalar != 0)
    }

    /// Preprocesses the RGBA image (`width × height`, a canvas's
    /// `getImageData`) in the input buffer into a 28×28 MNIST digit at
    /// [`bnn_image`]: 1, or 0 when nothing is drawn, or -1 when the buffer
    /// does not hold such an image (see [`preprocess::preprocess`]).
    #[no_mangle]
    pub extern "C" fn bnn_preprocess_rgba(width: usize, height: usize) -> i32 {
        with(|s| {
            let pixels = width.checked_mul(height).and_then(|p| p.checked_mul(4));
            if pixels != Some(s.input.len()) {
                return s.fail(format!(
                    "{} bytes are not a {width}x{height} RGBA image",
                    s.input.len()
                ));
            }
            let gray = preprocess::gray_from_rgba(&s.input);
            match preprocess::preprocess(&gray, width, height) {
                Ok(image) => {
                    s.image = image;
                    1
                }
                Err(preprocess::Refusal::Blank) => {
                    s.image = vec![0; preprocess::SIDE * preprocess::SIDE];
                    s.message = "nothing drawn".into();
                    0
                }
                Err(preprocess::Refusal::Size) => {
                    s.fail(format!("{width}x{height} is not an image size"))
                }
            }
        })
    }

    /// The last preprocessed image, 784 bytes.
    #[no_mangle]
    pub extern "C" fn bnn_image() -> *const u8 {
        with(|s| s.image.as_ptr())
    }

    #[no_mangle]
    pub extern "C" fn bnn_message() -> *const u8 {
        with(|s| s.message.as_ptr())
    }

    #[no_mangle]
    pub extern "C" fn bnn_message_len() -> usize {
        with(|s| s.message.len())
    }
}

#[cfg(test)]
mod tests {
    use super::abi::*;
    use super::*;

    fn message() -> String {
        with(|s| s.message.clone())
    }

    fn put(bytes: &[u8]) {
        bnn_input(bytes.len());
        with(|s| s.input.copy_from_slice(bytes));
    }

    fn model_bytes() -> Vec<u8> {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../weights/mnist-512.bnn");
        std::fs::read(root).expect("weights/mnist-512.bnn")
    }

    /// A model loads from bytes and classifies like `bnn_core` itself; the
    /// same image twice gives the same class and scores twice.
    #[test]
    fn load_and_classify_agree_with_the_engine() {
        let bytes = model_bytes();
        put(&bytes);
        let h = bnn_load();
        assert!(h >= 1, "{}", message());
        assert_eq!(bnn_model_inputs(h), 784);
        assert_eq!(bnn_model_classes(h), 10);
        let len = bnn_model_describe(h);
        assert_eq!(message(), "784-512-10 d512,d10 binary>=128");
        assert_eq!(len as usize, message().len());

        let model = format::from_bytes(&bytes, Path::new("m")).unwrap().model;
        let mut image: Vec<u8> = (0..784).map(|i| if i % 29 < 9 { 200 } else { 0 }).collect();
        image.extend((0..784).map(|i| if (i / 28) % 5 < 2 { 255 } else { 0 }));
        let want = model
            .predict_batch_with(&image, RunOptions::default())
            .unwrap();
        put(&image);
        assert_eq!(bnn_classify(h, 2), 0, "{}", message());
        with(|s| {
            assert_eq!(
                s.classes,
                want.classes.iter().map(|&c| c as u32).collect::<Vec<_>>()
            );
            assert_eq!(s.scores, want.scores);
        });
    }

    #[test]
    fn bad_input_is_a_message_not_a_panic() {
        bnn_name(7);
        with(|s| s.name.copy_from_slice(b"bad.bnn"));
        put(b"not a model at all");
        assert_eq!(bnn_load(), 0);
        assert!(message().starts_with("bad.bnn: "), "{}", message());

        put(&model_bytes());
        let h = bnn_load();
        put(&[0; 784]);
        assert_eq!(bnn_classify(h, 2), -1);
        assert_eq!(
            message(),
            "2 images of 784 bytes do not fit the 784 bytes given"
        );
        assert_eq!(bnn_classify(h + 100, 1), -1);
        assert_eq!(message(), format!("no model with handle {}", h + 100));
        bnn_unload(h);
        assert_eq!(bnn_model_inputs(h), -1);
        assert_eq!(bnn_classify(h, usize::MAX), -1);

        put(&[0; 10]);
        assert_eq!(bnn_preprocess_rgba(2, 2), -1);
        assert_eq!(message(), "10 bytes are not a 2x2 RGBA image");
        assert_eq!(bnn_preprocess_rgba(usize::MAX, 3), -1);
        put(&[0; 16]);
        assert_eq!(bnn_preprocess_rgba(2, 2), 0);
        assert_eq!(message(), "nothing drawn");
    }

    #[test]
    fn the_kernel_is_named_and_scalar_can_be_forced() {
        let len = bnn_kernel();
        assert_eq!(message(), bnn_core::kernel::active().name());
        assert_eq!(len as usize, message().len());
        bnn_use_scalar(1);
        bnn_kernel();
        assert_eq!(message(), "scalar");
        bnn_use_scalar(0);
    }
}
