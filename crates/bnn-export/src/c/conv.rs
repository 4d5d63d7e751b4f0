//! The convolutions of a CNN in C: their tables, two layer functions (one
//! on bit maps, one on u8 pixels), the static buffers they share, and their
//! calls in `predict`.
//!
//! A convolution is computed directly, window by window, with no im2col
//! matrix: for each output position the window's `k` runs of `k·C` bits are
//! gathered into one row (padded positions stay bit 0, which is −1, as in
//! the engine) and XOR-popcounted against every filter. A 2×2 max pool is
//! folded into the same loop: the four positions of a pooled cell update
//! one output bit, OR for a channel whose threshold is not flipped and AND
//! for a flipped one, which `bnn_core::conv` proves equal to pooling the
//! dots before the threshold. So a pooled convolution never stores its
//! unpooled map, and the RAM a CNN needs is its largest maps, not the
//! largest convolution output.
//!
//! # Static RAM
//!
//! Activations alternate between two static buffers, A and B: the input
//! bits (binary input) or the first convolution's output (u8 input) go to
//! A, every later layer reads one buffer and writes the other. Each buffer
//! is as large as the largest activation it ever holds, in whole words, and
//! one more buffer holds a window row (the widest binary convolution's
//! `k·k·C` bits). Static rather than stack: these are the largest arrays of
//! a CNN, and a microcontroller's linker accounts for static RAM where it
//! cannot see a stack overflow coming. The price is that `predict` is not
//! reentrant; the header says so.

use std::fmt::Write;

use super::source::{list, pack_flips, word_list};
use super::Names;
use crate::plan::{ConvKind, Plan, WordBits};

/// A CNN's static buffers, in words: the two activation buffers and the
/// window row.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Buffers {
    /// Buffer A: the largest of activations 0, 2, 4, … (a bit input is activation 0).
    pub a: usize,
    /// Buffer B: the largest of activations 1, 3, 5, …
    pub b: usize,
    /// One gathered window row: the widest of the bit convolutions'.
    pub window: usize,
}

impl Buffers {
    /// The buffers `plan`'s activations need, alternating between A and B
    /// so that each layer reads one and writes the other.
    pub fn of(plan: &Plan) -> Self {
        let words = |n: usize| plan.word.words_for(n);
        let binary_input = plan
            .convs
            .first()
            .is_some_and(|c| matches!(c.kind, ConvKind::Bits(_)));
        // Every activation in order: activation i lives in buffer i % 2.
        let activations: Vec<usize> = binary_input
            .then(|| words(plan.input_len))
            .into_iter()
            .chain(plan.convs.iter().map(|c| words(c.output_len())))
            .chain(plan.hidden().iter().map(|l| words(l.outputs)))
            .collect();
        let largest = |parity: usize| {
            activations
                .iter()
                .skip(parity)
                .step_by(2)
                .copied()
                .max()
                .unwrap_or(0)
        };
        Buffers {
            a: largest(0),
            b: largest(1),
            window: plan
                .convs
                .iter()
                .filter(|c| matches!(c.kind, ConvKind::Bits(_)))
                .map(|c| c.words_per_row)
                .max()
                .unwrap_or(0),
        }
    }

    /// The three buffers' RAM at `word` bits a word.
    pub fn bytes(&self, word: WordBits) -> usize {
        (self.a + self.b + self.window) * word.bytes()
    }
}

/// The names of the two activation buffers, A then B.
pub fn buffer_names(p: &str) -> [String; 2] {
    [format!("{p}_act_a"), format!("{p}_act_b")]
}

/// Weight rows, then limits (bit maps) or cuts (pixels), then flip bits.
pub fn tables(s: &mut String, plan: &Plan, n: &Names) {
    let p = &n.prefix;
    let wb = plan.word.bits();
    for (i, c) in plan.convs.iter().enumerate() {
        let l = i + 1;
        let (h, w, ch) = c.input;
        let (ho, wo, m) = c.output;
        let pool = if c.pool == 2 { ", 2x2 max pool" } else { "" };
        let _ = writeln!(
            s,
            "/* Layer {l}: {k}x{k} convolution, {h}x{w}x{ch} -> {ho}x{wo}x{m}{pool}, {pad} padded each side; {words} words per filter of {win} weights in (ky, kx, c) order (bit i of a row is bit i % {wb} of word i / {wb}; 1 = +1). */",
            k = c.k,
            pad = c.pad,
            words = c.words_per_row,
            win = c.window,
        );
        let _ = writeln!(
            s,
            "static const {p}_word {p}_w{l}[{}] = {{",
            c.weights.len()
        );
        word_list(s, plan.word, &c.weights);
        match &c.kind {
            ConvKind::Bits(limits) => {
                let _ = writeln!(
                    s,
                    "/* Filter j fires iff (popcount <= limit[j]) XOR flip bit j. */"
                );
                let _ = writeln!(
                    s,
                    "static const {p}_limit {p}_limit{l}[{}] = {{",
                    limits.len()
                );
                list(s, limits, 12, |l| l.limit.to_string());
            }
            ConvKind::Pixels(cuts) => {
                let _ = writeln!(
                    s,
                    "/* Filter j fires iff (dot >= cut[j]) XOR flip bit j, dot = sum of +-pixel over the window. */"
                );
                let _ = writeln!(s, "static const int32_t {p}_cut{l}[{}] = {{", cuts.len());
                list(s, cuts, 8, |(c, _)| c.to_string());
            }
        }
        if let Some(bytes) = pack_flips(c.flips().into_iter()) {
            let _ = writeln!(s, "static const uint8_t {p}_flip{l}[{}] = {{", bytes.len());
            list(s, &bytes, 12, |b| format!("0x{b:02x}"));
        }
    }
}

/// The static activation buffers (a buffer no activation uses is left out).
pub fn statics(s: &mut String, plan: &Plan, n: &Names) {
    let p = &n.prefix;
    let b = Buffers::of(plan);
    let _ = writeln!(
        s,
        "/* Activations, {} bytes of static RAM: maps and hidden layers alternate\n   between A and B; one window row of a binary convolution. */",
        b.bytes(plan.word)
    );
    let [a_name, b_name] = buffer_names(p);
    for (name, words) in [
        (a_name, b.a),
        (b_name, b.b),
        (format!("{p}_window"), b.window),
    ] {
        if words > 0 {
            let _ = writeln!(s, "static {p}_word {name}[{words}];");
        }
    }
    s.push('\n');
}

/// The layer functions the model's convolutions need: the pooling helpers
/// every convolution uses, then the kernel of each kind the plan has.
pub fn functions(s: &mut String, plan: &Plan, n: &Names) {
    if plan.convs.is_empty() {
        return;
    }
    let any_bits = plan
        .convs
        .iter()
        .any(|c| matches!(c.kind, ConvKind::Bits(_)));
    let any_pixels = plan
        .convs
        .iter()
        .any(|c| matches!(c.kind, ConvKind::Pixels(_)));
    pool_helpers(s, plan, n);
    if any_bits {
        bits_conv(s, plan, n);
    }
    if any_pixels {
        pixels_conv(s, plan, n);
    }
}

/// `pool_bit` and `flip_bit`: how a convolution's outputs are pooled and
/// flipped, shared by both kinds of convolution.
fn pool_helpers(s: &mut String, plan: &Plan, n: &Names) {
    let p = &n.prefix;
    let wb = plan.word.bits();
    let _ = write!(
        s,
        "\
/* Output bit i of a (pooled) map for one of the pool's positions: the
   first sets it to fire; later ones OR fire in, or AND it in for a flipped
   channel (pooling the bits equals pooling the dots: see the export docs). */
static void {p}_pool_bit({p}_word *y, uint32_t i, uint32_t fire, uint32_t first,
    uint32_t flipped)
{{
    {p}_word m = ({p}_word)1 << (i % {wb}u);
    if (first != 0u || flipped == 0u) {{
        if (fire != 0u) {{
            y[i / {wb}u] |= m;
        }}
    }} else if (fire == 0u) {{
        y[i / {wb}u] &= ({p}_word)~m;
    }}
}}

static uint32_t {p}_flip_bit(const uint8_t *flip, uint32_t j)
{{
    return flip != 0 ? (uint32_t)(flip[j / 8u] >> (j % 8u)) & 1u : 0u;
}}

"
    );
}

/// The convolution over bit maps (every convolution after a u8 model's
/// first), with the bit-copying helpers its window gathering needs.
fn bits_conv(s: &mut String, plan: &Plan, n: &Names) {
    let p = &n.prefix;
    let u = &n.upper;
    let wb = plan.word.bits();
    let wm1 = wb - 1;
    let _ = write!(
        s,
        "\
/* n bits (1..{wb}) of x from bit `at`, in the low bits of the result. */
static {p}_word {p}_bits(const {p}_word *x, uint32_t at, uint32_t n)
{{
    uint32_t i = at / {wb}u, sh = at % {wb}u;
    {p}_word v = x[i] >> sh;
    if (sh != 0u && sh + n > {wb}u) {{
        v |= x[i + 1u] << ({wb}u - sh);
    }}
    if (n < {wb}u) {{
        v &= (({p}_word)1 << n) - 1u;
    }}
    return v;
}}

/* ORs `len` bits of x from bit `from` into y from bit `to`. */
static void {p}_copy_bits(const {p}_word *x, uint32_t from, {p}_word *y, uint32_t to,
    uint32_t len)
{{
    while (len > 0u) {{
        uint32_t n = len < {wb}u ? len : {wb}u;
        uint32_t i = to / {wb}u, sh = to % {wb}u;
        {p}_word v = {p}_bits(x, from, n);
        y[i] |= v << sh;
        if (sh != 0u && sh + n > {wb}u) {{
            y[i + 1u] |= v >> ({wb}u - sh);
        }}
        from += n;
        to += n;
        len -= n;
    }}
}}

/* A binary convolution over the h x wd x c bit map x, k x k, `pad` padded
   positions each side, `pool` 1 or 2, into the ho x wo x n map y (after
   pooling). Each window is gathered into `win` (padded bits stay 0, -1)
   and XOR-popcounted against every filter. */
static void {p}_conv_bits(const {p}_word *x, const {p}_word *w, const {p}_limit *limit,
    const uint8_t *flip, uint32_t h, uint32_t wd, uint32_t c, uint32_t k, uint32_t pad,
    uint32_t pool, uint32_t ho, uint32_t wo, uint32_t n, uint32_t words, {p}_word *win,
    {p}_word *y)
{{
    uint32_t py, px, d, ky, j, t;
    for (t = 0; t < (ho * wo * n + {wm1}u) / {wb}u; ++t) {{
        y[t] = 0;
    }}
    for (py = 0; py < ho; ++py) {{
        for (px = 0; px < wo; ++px) {{
            for (d = 0; d < pool * pool; ++d) {{
                uint32_t oy = py * pool + d / pool, ox = px * pool + d % pool;
                uint32_t lo = ox < pad ? pad - ox : 0u;
                uint32_t hi = wd + pad - ox < k ? wd + pad - ox : k;
                const {p}_word *row = w;
                for (t = 0; t < words; ++t) {{
                    win[t] = 0;
                }}
                for (ky = 0; ky < k; ++ky) {{
                    if (oy + ky >= pad && oy + ky - pad < h) {{
                        {p}_copy_bits(x, ((oy + ky - pad) * wd + ox + lo - pad) * c, win,
                            (ky * k + lo) * c, (hi - lo) * c);
                    }}
                }}
                for (j = 0; j < n; ++j, row += words) {{
                    int32_t pop = 0;
                    uint32_t flipped = {p}_flip_bit(flip, j);
                    for (t = 0; t < words; ++t) {{
                        pop += {u}_POPCOUNT(win[t] ^ row[t]);
                    }}
                    {p}_pool_bit(y, (py * wo + px) * n + j, (uint32_t)(pop <= limit[j]) ^ flipped,
                        (uint32_t)(d == 0u), flipped);
                }}
            }}
        }}
    }}
}}

"
    );
}

/// The first convolution of a u8 model, over pixels.
fn pixels_conv(s: &mut String, plan: &Plan, n: &Names) {
    let p = &n.prefix;
    let wb = plan.word.bits();
    let wm1 = wb - 1;
    let _ = write!(
        s,
        "\
/* The first convolution of a u8 model over the h x wd x c pixels px, into
   the ho x wo x n bit map y (after pooling): dot = sum of +pixel where the
   weight bit is 1 and -pixel where it is 0, padded pixels adding nothing.
   At most 255 * k * k * c in magnitude: an int32_t. Zero pixels (most of a
   digit's margin) are skipped: they add nothing either. */
static void {p}_conv_pixels(const uint8_t *px, const {p}_word *w, const int32_t *cut,
    const uint8_t *flip, uint32_t h, uint32_t wd, uint32_t c, uint32_t k, uint32_t pad,
    uint32_t pool, uint32_t ho, uint32_t wo, uint32_t n, uint32_t words, {p}_word *y)
{{
    uint32_t py, qx, d, ky, j, t;
    for (t = 0; t < (ho * wo * n + {wm1}u) / {wb}u; ++t) {{
        y[t] = 0;
    }}
    for (py = 0; py < ho; ++py) {{
        for (qx = 0; qx < wo; ++qx) {{
            for (d = 0; d < pool * pool; ++d) {{
                uint32_t oy = py * pool + d / pool, ox = qx * pool + d % pool;
                uint32_t lo = ox < pad ? pad - ox : 0u;
                uint32_t hi = wd + pad - ox < k ? wd + pad - ox : k;
                const {p}_word *row = w;
                for (j = 0; j < n; ++j, row += words) {{
                    int32_t dot = 0;
                    uint32_t flipped = {p}_flip_bit(flip, j);
                    for (ky = 0; ky < k; ++ky) {{
                        /* The window row's pixels in bounds: one run of
                           (hi - lo) * c bytes, and its weight bits. */
                        const uint8_t *run;
                        uint32_t bit = (ky * k + lo) * c, len = (hi - lo) * c;
                        if (oy + ky < pad || oy + ky - pad >= h) {{
                            continue;
                        }}
                        run = px + ((oy + ky - pad) * wd + ox + lo - pad) * c;
                        for (t = 0; t < len; ++t, ++bit) {{
                            int32_t v = (int32_t)run[t];
                            if (v == 0) {{
                                continue;
                            }}
                            dot += ((row[bit / {wb}u] >> (bit % {wb}u)) & 1u) != 0 ? v : -v;
                        }}
                    }}
                    {p}_pool_bit(y, (py * wo + qx) * n + j, (uint32_t)(dot >= cut[j]) ^ flipped,
                        (uint32_t)(d == 0u), flipped);
                }}
            }}
        }}
    }}
}}

"
    );
}

/// The convolutions' calls in `predict`, from the pixels or the input bits
/// in buffer A; returns the buffer (0 for A, 1 for B) holding the last map.
pub fn calls(s: &mut String, plan: &Plan, n: &Names) -> usize {
    let p = &n.prefix;
    let bufs = buffer_names(p);
    let mut cur = 0;
    for (i, c) in plan.convs.iter().enumerate() {
        let l = i + 1;
        let (h, w, ch) = c.input;
        let (ho, wo, m) = c.output;
        let flip = if pack_flips(c.flips().into_iter()).is_some() {
            format!("{p}_flip{l}")
        } else {
            "0".to_string()
        };
        let geometry = format!(
            "{h}u, {w}u, {ch}u, {k}u, {pad}u, {pool}u, {ho}u, {wo}u, {m}u, {words}u",
            k = c.k,
            pad = c.pad,
            pool = c.pool,
            words = c.words_per_row,
        );
        match c.kind {
            ConvKind::Pixels(_) => {
                let _ = writeln!(
                    s,
                    "    {p}_conv_pixels(pixels, {p}_w{l}, {p}_cut{l}, {flip},\n        {geometry}, {});",
                    bufs[0]
                );
            }
            ConvKind::Bits(_) => {
                let _ = writeln!(
                    s,
                    "    {p}_conv_bits({}, {p}_w{l}, {p}_limit{l}, {flip},\n        {geometry}, {p}_window, {});",
                    bufs[cur],
                    bufs[1 - cur]
                );
                cur = 1 - cur;
            }
        }
    }
    cur
}
