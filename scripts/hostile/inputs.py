#!/usr/bin/env python3
"""A hostile-but-realistic pass over what `bnn` reads and where it writes.

Families: classify (IDX raw and gzip, .npy, PNG/PGM, directories, pipes and
FIFOs, every output path and format, kernels, layer modes and threads from
the environment and the flags), eval, info and kernels (corrupt, crafted
and odd model files, odd --data directories, --rule and --kernel values),
import-npz (hostile .npz archives and -o paths) and fetch (--dir onto
files, links and unwritable places; never a download: `npm` on PATH is a
stand-in that records that it was called and fails).

Every case runs in its own temporary directory under `timeout` and an
address-space limit, and is checked for: a panic, signal death or hang; an
error that is not one line of at most 300 characters starting
"bnn: error: ", that misses the file or words it must name, or has the
wrong exit code (2 for usage errors and unusable output paths, 1 for the
rest, as tests/*.rs classify them); any file, link or special file in the
case's directory changed other than the run's declared outputs; an output
that a failed run replaced or left behind; a replaced output whose mode or
owner changed; a stray file or a `.NAME.*.tmp` left behind; and, for runs
that succeed, output that is wrong (checked against a reference run of the
same images in another form, or by parsing it).

    python3 scripts/hostile/inputs.py [--bnn PATH] [--only SUBSTRING] [-v]

Needs only Python 3 (no NumPy): every file is written byte by byte here.
Runs as root for the device-node cases (mknod) and drops to nobody
(setpriv) for the permission cases.
"""

import argparse
import csv
import gzip
import hashlib
import io
import json
import os
import resource
import shutil
import stat
import struct
import subprocess
import sys
import tempfile
import threading
import time
import zipfile
import zlib

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
WEIGHTS = os.path.join(ROOT, "weights")
MNIST = os.path.join(ROOT, "data", "mnist")
TIMEOUT = 30
MEM_LIMIT = 4 << 30

FAMILIES = ["classify", "eval", "info", "kernels", "import-npz", "fetch"]
CASES = []  # (family, name, setup)


def case(family, name):
    def wrap(fn):
        CASES.append((family, name, fn))
        return fn
    return wrap


def add(family, name, fn):
    CASES.append((family, name, fn))


# ---------------------------------------------------------------- results


def OK(args, check=None, outputs=(), **kw):
    return dict(args=args, code=0, check=check, outputs=list(outputs), **kw)


def FAIL(code, args, *needles, outputs=(), **kw):
    return dict(args=args, code=code, needles=list(needles), outputs=list(outputs), **kw)


# ------------------------------------------------------------ file makers


def test_images(n):
    with open(os.path.join(MNIST, "t10k-images-idx3-ubyte"), "rb") as f:
        f.seek(16)
        return f.read(784 * n)


IMG = None  # first 10 MNIST test images, filled in main()


def idx(dims, data, typ=0x08, magic=None):
    head = magic if magic is not None else bytes([0, 0, typ, len(dims)])
    return head + b"".join(struct.pack(">I", d) for d in dims) + data


def gz(data):
    return gzip.compress(data, mtime=0)


def npy(shape=(10, 784), data=b"", descr="'|u1'", fortran="False", header=None,
        version=(1, 0), newline=True):
    if header is None:
        inner = ", ".join(str(s) for s in shape)
        if len(shape) == 1:
            inner += ","
        header = "{'descr': %s, 'fortran_order': %s, 'shape': (%s), }" % (descr, fortran, inner)
    h = header.encode("latin-1") if isinstance(header, str) else header
    size_len = 2 if version[0] == 1 else 4
    total = 6 + 2 + size_len + len(h) + (1 if newline else 0)
    h = h + b" " * ((-total) % 64) + (b"\n" if newline else b"")
    size = struct.pack("<H" if size_len == 2 else "<I", len(h))
    return b"\x93NUMPY" + bytes(version) + size + h + data


def chunk(kind, data, crc=None):
    c = zlib.crc32(kind + data) & 0xFFFFFFFF if crc is None else crc
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", c)


PNG_SIG = b"\x89PNG\r\n\x1a\n"


def png_raw(w, h, depth, ctype, scanlines, plte=None, trns=None, interlace=0, idat=None,
            before_iend=b"", after=b"", iend=True, ihdr=None):
    ihdr = ihdr or struct.pack(">IIBBBBB", w, h, depth, ctype, 0, 0, interlace)
    out = PNG_SIG + chunk(b"IHDR", ihdr)
    if plte is not None:
        out += chunk(b"PLTE", plte)
    if trns is not None:
        out += chunk(b"tRNS", trns)
    if idat is None:
        idat = zlib.compress(scanlines)
    out += chunk(b"IDAT", idat) + before_iend
    if iend:
        out += chunk(b"IEND", b"")
    return out + after


def pack_row(values, depth, ctype):
    """One row of 0..255 gray values in a PNG pixel format (no filter byte)."""
    if ctype == 0 and depth < 8:
        levels = (1 << depth) - 1
        q = [round(v * levels / 255) for v in values]
        bits = "".join(format(v, "0%db" % depth) for v in q)
        bits += "0" * ((-len(bits)) % 8)
        return bytes(int(bits[i:i + 8], 2) for i in range(0, len(bits), 8))
    if ctype == 3 and depth < 8:
        # Palette of 2**depth gray levels; the value picks the nearest.
        levels = (1 << depth) - 1
        q = [round(v * levels / 255) for v in values]
        bits = "".join(format(v, "0%db" % depth) for v in q)
        bits += "0" * ((-len(bits)) % 8)
        return bytes(int(bits[i:i + 8], 2) for i in range(0, len(bits), 8))
    per = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}[ctype]
    out = bytearray()
    for v in values:
        px = {0: [v], 2: [v, v, v], 3: [v], 4: [v, 77], 6: [v, v, v, 200]}[ctype]
        for s in px[:per]:
            out += struct.pack(">H", s * 257) if depth == 16 else bytes([s])
    return bytes(out)


def quantized(gray, depth):
    """The gray values a low-bit-depth PNG of `gray` decodes to."""
    if depth >= 8:
        return gray
    levels = (1 << depth) - 1
    return bytes(round(round(v * levels / 255) * 255 / levels) for v in gray)


def png(gray, w=28, h=28, depth=8, ctype=0, interlace=0, **kw):
    rows = [gray[y * w:(y + 1) * w] for y in range(h)]
    if interlace:
        passes = [(0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2)]
        data = b""
        for xs, ys, dx, dy in passes:
            if xs >= w or ys >= h:
                continue
            for y in range(ys, h, dy):
                data += b"\x00" + pack_row([rows[y][x] for x in range(xs, w, dx)], depth, ctype)
    else:
        data = b"".join(b"\x00" + pack_row(list(r), depth, ctype) for r in rows)
    plte = kw.pop("plte", None)
    if ctype == 3 and plte is None:
        n = 1 << depth
        plte = b"".join(bytes([round(i * 255 / (n - 1))] * 3) for i in range(n))
    return png_raw(w, h, depth, ctype, data, plte=plte, interlace=interlace, **kw)


def pgm(gray, w=28, h=28, maxval=255, text=False, head=None, tail=b""):
    if head is None:
        head = ("P2" if text else "P5") + "\n%d %d\n%d\n" % (w, h, maxval)
    head = head.encode() if isinstance(head, str) else head
    if text:
        vals = [round(v * maxval / 255) for v in gray]
        body = "\n".join(" ".join(str(v) for v in vals[y * w:(y + 1) * w]) for y in range(h)).encode() + b"\n"
    elif maxval > 255:
        body = b"".join(struct.pack(">H", round(v * maxval / 255)) for v in gray)
    else:
        body = bytes(round(v * maxval / 255) for v in gray)
    return head + body + tail


BNN_MAGIC = b"\x89BNN\r\n\x1a\n"


def bnn_v1(n0=16, layers=((8, 0, 2), (3, 1, 0)), desc=b"crafted", rule=1, thr=128,
           version=1, magic=BNN_MAGIC, body=None, bias=None, fix_crc=True, tail=b"",
           thresholds=None, flips=None):
    """A version-1 model: `layers` are (neurons, kind, threshold width)."""
    out = magic + struct.pack("<HBBIII", version, rule, thr, n0, len(layers), len(desc))
    for m, kind, w in layers:
        out += struct.pack("<IBBH", m, kind, w, 0)
    out += desc
    if body is None:
        body = b""
        n = n0
        for i, (m, kind, w) in enumerate(layers):
            bits = m * n
            words = (bits + 63) // 64
            weights = bytearray(8 * words)
            for k in range(bits):
                if (k * 7 + i) % 3 == 0:
                    weights[k // 8] |= 1 << (k % 8)
            body += bytes(weights)
            if kind == 0:
                body += (thresholds or (lambda m: struct.pack("<%dh" % m, *([0] * m))))(m) if w == 2 else \
                    struct.pack("<%di" % m, *([0] * m)) if w == 4 else b"\x00" * (max(w, 0) * m)
                body += flips if flips is not None else b"\x00" * ((m + 7) // 8)
            else:
                body += bias if bias is not None else struct.pack("<%df" % m, *[0.25 * j for j in range(m)])
            n = m
    out += body
    crc = zlib.crc32(out) & 0xFFFFFFFF
    if not fix_crc:
        crc ^= 0xDEADBEEF
    return out + struct.pack("<I", crc) + tail


def v3_with_section(v2, tag, payload, flags=1):
    """A version-2 model file `v2` as version 3 with one section added."""
    body = v2[:-4]
    sec = tag + struct.pack("<HHI", flags, 0, len(payload)) + payload
    out = bytearray(body[:36])
    out[8:10] = struct.pack("<H", 3)
    out += struct.pack("<I", len(sec)) + body[36:] + sec
    return bytes(out) + struct.pack("<I", zlib.crc32(bytes(out)) & 0xFFFFFFFF)


def scal(scales, count=None):
    """A SCAL payload: the count (the scales' unless given), then each f32."""
    n = len(scales) if count is None else count
    return struct.pack("<I", n) + struct.pack("<%df" % len(scales), *scales)


def npz(members, compression=zipfile.ZIP_STORED):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression) as z:
        for name, data in members:
            import warnings
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                z.writestr(name, data)
    return buf.getvalue()


def npy_i8(shape, values):
    return npy(shape=shape, data=struct.pack("<%dq" % len(values), *values), descr="'<i8'")


def npy_f8(shape, values):
    return npy(shape=shape, data=struct.pack("<%dd" % len(values), *values), descr="'<f8'")


def signs(n, seed):
    return [1 if ((i * 2654435761 + seed) >> 7) & 1 else -1 for i in range(n)]


def tiny_npz_members(i=6, h=5, o=3, **over):
    """fc1 (h, i), fc2 (o, h): a small valid seed-style network."""
    m = {
        "fc1_w.npy": npy_i8((h, i), signs(h * i, 1)),
        "fc1_b.npy": npy_f8((1, h), [0.5, -1.5, 0.0, 2.0, -0.25][:h] + [0.0] * max(0, h - 5)),
        "fc2_w.npy": npy_i8((o, h), signs(o * h, 2)),
        "fc2_b.npy": npy_f8((1, o), [0.1 * k for k in range(o)]),
    }
    m.update(over)
    return [(k, v) for k, v in m.items() if v is not None]


# -------------------------------------------------------------- the cases


def W(d, name, data, mode=None):
    p = os.path.join(d, name)
    os.makedirs(os.path.dirname(p), exist_ok=True)
    with open(p, "wb") as f:
        f.write(data)
    if mode is not None:
        os.chmod(p, mode)
    return p


def model(d, name="seed.bnn", as_name="m.bnn"):
    p = os.path.join(d, as_name)
    shutil.copyfile(os.path.join(WEIGHTS, name), p)
    return p


def mknod(d, name, minor):
    p = os.path.join(d, name)
    os.mknod(p, 0o666 | stat.S_IFCHR, os.makedev(1, minor))
    return p


def fifo(d, name):
    p = os.path.join(d, name)
    os.mkfifo(p)
    return p


def mnist_test(d, sub="mnist", gzipped=False, names=None):
    p = os.path.join(d, sub)
    os.makedirs(p, exist_ok=True)
    for stem in ["t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"]:
        with open(os.path.join(MNIST, stem), "rb") as f:
            data = f.read()
        name = (names or {}).get(stem, stem)
        if gzipped:
            W(p, name + ".gz", gz(data))
        else:
            W(p, name, data)
    return p


def mnist_all(d, sub="mnist"):
    p = os.path.join(d, sub)
    os.makedirs(p, exist_ok=True)
    for name in os.listdir(MNIST):
        shutil.copyfile(os.path.join(MNIST, name), os.path.join(p, name))
    return p


# Output checks ---------------------------------------------------------


def parse_csv(text, classes=10, scores=True):
    rows = list(csv.reader(io.StringIO(text)))
    want = ["source", "index", "class"] + (["score_%d" % i for i in range(classes)] if scores else [])
    if not rows or rows[0] != want:
        raise AssertionError("CSV header is %r" % (rows[:1],))
    out = []
    for r in rows[1:]:
        if len(r) != len(want):
            raise AssertionError("CSV row of %d fields: %r" % (len(r), r[:4]))
        out.append((r[0], int(r[1]), int(r[2]), tuple(float(x) for x in r[3:])))
    return out


def parse_npy_out(data):
    if not data.startswith(b"\x93NUMPY"):
        raise AssertionError("not a .npy")
    major = data[6]
    if major == 1:
        hl = struct.unpack("<H", data[8:10])[0]
        start = 10
    else:
        hl = struct.unpack("<I", data[8:12])[0]
        start = 12
    header = data[start:start + hl].decode("latin-1")
    body = data[start + hl:]
    return header, body


def classes_of(res):
    return [(r[2], r[3]) for r in parse_csv(res["stdout"], scores=True)]


class Ctx:
    """What a check may use: the case directory and a way to run bnn."""

    def __init__(self, bnn, d, env):
        self.bnn, self.d, self.env = bnn, d, env

    def run(self, args, stdin=None):
        p = subprocess.run([self.bnn] + args, cwd=self.d, env=self.env, input=stdin,
                           capture_output=True, timeout=TIMEOUT)
        if p.returncode != 0:
            raise AssertionError("reference run %r failed: %s" % (args, p.stderr.decode(errors="replace")[:200]))
        return p.stdout.decode()

    def ref(self, model_path, data, fmt="csv", extra=()):
        """classify's rows (class, scores) for `data` written as an IDX file."""
        p = os.path.join(tempfile.mkdtemp(prefix="bnn-ref-"), "ref.idx")
        with open(p, "wb") as f:
            f.write(idx([len(data) // 784, 28, 28], data))
        try:
            out = self.run(["classify", model_path, p] + list(extra))
        finally:
            shutil.rmtree(os.path.dirname(p))
        return [(r[2], r[3]) for r in parse_csv(out)]


def same_as(model_path, gray_images, n_rows=None, where="stdout", sources=None):
    """Check: the CSV output classifies like `gray_images` (784 bytes each) read as IDX."""
    def check(res, ctx):
        text = res["stdout"] if where == "stdout" else open(where).read()
        rows = parse_csv(text)
        want = ctx.ref(model_path, gray_images)
        got = [(r[2], r[3]) for r in rows]
        if got != want:
            return "output differs from the same images read as IDX (%d rows vs %d; first %r vs %r)" % (
                len(got), len(want), got[:1], want[:1])
        if sources is not None:
            srcs = [(r[0], r[1]) for r in rows]
            if srcs != sources:
                return "sources/indexes %r, expected %r" % (srcs[:3], sources[:3])
        return None
    return check


def rows_check(n, where="stdout", scores=True):
    def check(res, ctx):
        text = res["stdout"] if where == "stdout" else open(where).read()
        rows = parse_csv(text, scores=scores)
        if len(rows) != n:
            return "%d rows, expected %d" % (len(rows), n)
        return None
    return check


# ============================================================== classify

C = "classify"


def idx_cases():
    for n, name in [(10, "ten"), (1, "one"), (0, "none")]:
        def s(d, n=n):
            m = model(d)
            p = W(d, "x.idx", idx([n, 28, 28], IMG[:784 * n]))
            return OK(["classify", m, p], check=same_as(m, IMG[:784 * n]) if n else rows_check(0))
        add(C, "idx raw %s" % name, s)

        def s(d, n=n):
            m = model(d)
            p = W(d, "x.gz", gz(idx([n, 28, 28], IMG[:784 * n])))
            return OK(["classify", m, p], check=same_as(m, IMG[:784 * n]) if n else rows_check(0))
        add(C, "idx gzip %s" % name, s)
    # Wrong magic numbers: type codes, ranks, non-zero leading bytes.
    magics = [bytes([0, 0, t, 3]) for t in (0x09, 0x0B, 0x0C, 0x0D, 0x0E, 0x07, 0x00, 0xFF)]
    magics += [bytes([0, 0, 8, r]) for r in (0, 1, 2, 4, 9, 255)]
    magics += [bytes([1, 0, 8, 3]), bytes([0, 1, 8, 3]), b"\x00\x00\x08\x03"[::-1]]
    for mg in magics:
        for packed in (False, True):
            def s(d, mg=mg, packed=packed):
                m = model(d)
                data = idx([10, 28, 28], IMG, magic=mg)
                p = W(d, "bad.gz" if packed else "bad.idx", gz(data) if packed else data)
                return FAIL(1, ["classify", m, p], p)
            add(C, "idx %s magic %s" % ("gzip" if packed else "raw", mg.hex()), s)
    # Dimensions.
    for dims, code, want in [((10, 14, 56), 0, None), ((10, 1, 784), 0, None), ((10, 28, 27), 1, "28x27"),
                             ((10, 0, 28), 1, None), ((10, 28, 0), 1, None), ((10, 784, 1), 0, None),
                             ((10, 65536, 65536), 1, "65536"), ((10, 4294967295, 4294967295), 1, None)]:
        for pk in (False, True):
            def s(d, dims=dims, code=code, want=want, packed=pk):
                m = model(d)
                size = dims[0] * dims[1] * dims[2]
                data = idx(list(dims), IMG[:size] if size <= len(IMG) else IMG)
                p = W(d, "dims.gz" if packed else "dims.idx", gz(data) if packed else data)
                if code == 0:
                    return OK(["classify", m, p], check=same_as(m, IMG))
                return FAIL(1, ["classify", m, p], p, *( [want] if want else []))
            add(C, "idx %s dims %s" % ("gzip" if pk else "raw", "x".join(map(str, dims))), s)
    # The CNN takes only 28x28.
    for dims in [(10, 14, 56), (10, 784, 1), (10, 1, 784)]:
        def s(d, dims=dims):
            m = model(d, "mnist-cnn-small.bnn")
            p = W(d, "cnn.idx", idx(list(dims), IMG))
            return FAIL(1, ["classify", m, p], p, "%dx%dx1" % dims[1:], "28x28x1")
        add(C, "idx cnn refuses %dx%d" % dims[1:], s)
    # Truncated.
    full = idx([10, 28, 28], IMG)
    for cut in [0, 1, 3, 4, 8, 15, 16, 17, 800, len(full) - 1]:
        def s(d, cut=cut):
            m = model(d)
            p = W(d, "cut.idx", full[:cut])
            return FAIL(1, ["classify", m, p], p, "truncated" if cut >= 4 else "")
        add(C, "idx raw truncated at %d" % cut, s)
    packed = gz(full)
    for cut in [0, 2, 10, 20, len(packed) // 2, len(packed) - 8, len(packed) - 4, len(packed) - 1]:
        def s(d, cut=cut):
            m = model(d)
            p = W(d, "cut.gz", packed[:cut])
            return FAIL(1, ["classify", m, p], p)
        add(C, "idx gzip truncated at %d" % cut, s)
    # Trailing data.
    for extra, name in [(b"\x00", "one byte"), (b"\xff" * 783, "783 bytes"), (IMG[:784], "one more image"),
                        (b"\n", "a newline")]:
        def s(d, extra=extra):
            m = model(d)
            p = W(d, "tail.idx", full + extra)
            return FAIL(1, ["classify", m, p], p, "trailing")
        add(C, "idx raw trailing %s" % name, s)

        def s(d, extra=extra):
            m = model(d)
            p = W(d, "tail.gz", gz(full + extra))
            return FAIL(1, ["classify", m, p], p, "trailing")
        add(C, "idx gzip trailing %s inside" % name, s)

        def s(d, extra=extra):
            m = model(d)
            p = W(d, "tail2.gz", gz(full) + extra)
            return FAIL(1, ["classify", m, p], p)
        add(C, "idx gzip %s after the stream" % name, s)
    # A second gzip member holding the rest: either read as one stream or refused.
    def s(d):
        m = model(d)
        p = W(d, "multi.gz", gz(full[:5000]) + gz(full[5000:]))
        return dict(args=["classify", m, p], code={0, 1}, needles=[p], check=same_as(m, IMG))
    add(C, "idx gzip in two members", s)
    # Huge claimed counts: refused without allocating.
    for count in [11, 1000000, 2 ** 31, 2 ** 32 - 1]:
        for pk in (False, True):
            def s(d, count=count, packed=pk):
                m = model(d)
                data = idx([count, 28, 28], IMG)
                p = W(d, "huge.gz" if packed else "huge.idx", gz(data) if packed else data)
                return FAIL(1, ["classify", m, p], p, "truncated", partial=packed)
            add(C, "idx %s claims %d images" % ("gzip" if pk else "raw", count), s)
    # A gzip bomb: 10 images then 64 MiB of zeros inside the stream.
    def s(d):
        m = model(d)
        co = zlib.compressobj(9, zlib.DEFLATED, 31)
        body = co.compress(full)
        zero = bytes(1 << 20)
        for _ in range(64):
            body += co.compress(zero)
        body += co.flush()
        p = W(d, "bomb.gz", body)
        return FAIL(1, ["classify", m, p], p, "trailing", partial=True)
    add(C, "idx gzip bomb of trailing zeros", s)
    # A valid stream of 50,000 zero images compressed to a few KiB: read in bounded memory.
    def s(d):
        m = model(d)
        p = W(d, "zeros.gz", gz(idx([50000, 28, 28], bytes(784 * 50000))))
        return OK(["classify", m, p, "--classes-only"], check=rows_check(50000, scores=False))
    add(C, "idx gzip 50000 blank images", s)


def npy_cases():
    def base(d):
        return model(d)
    good = [((10, 784), "'|u1'"), ((10, 28, 28), "'|u1'"), ((10, 28, 28, 1), "'|u1'"), ((10, 1, 784), "'|u1'"),
            ((10, 784, 1), "'|u1'"), ((10, 784), "'<u1'"), ((10, 784), "'u1'"), ((10, 784), "'>u1'"),
            ((10, 784), "'=u1'"), ((10, 784), '"|u1"'), ((10, 784), "'uint8'"), ((10, 784), "'B'")]
    for shape, descr in good:
        def s(d, shape=shape, descr=descr):
            m = base(d)
            p = W(d, "x.npy", npy(shape, IMG, descr=descr))
            return dict(args=["classify", m, p], code={0, 1}, needles=[p, "dtype"], check=same_as(m, IMG))
        add(C, "npy %s %s" % (descr, shape), s)
    bad_dtypes = ["'|i1'", "'<u2'", "'<i4'", "'<f4'", "'<f8'", "'|b1'", "'<c8'", "'|O'", "'<M8[s]'", "'|S1'",
                  "'|V1'", "'<U1'", "[('a', '|u1')]", "'x'", "''", "'|u1 '", "'|u8'", "'<u8'", "None", "1",
                  "'\\x1b[31m'"]
    for descr in bad_dtypes:
        def s(d, descr=descr):
            m = base(d)
            p = W(d, "x.npy", npy((10, 784), IMG, descr=descr))
            return FAIL(1, ["classify", m, p], p)
        add(C, "npy dtype %s" % descr, s)
    bad_shapes = [(10,), (), (10, 28, 28, 1, 1), (10, 0), (10, 785), (10, 28, 28, 3), (10, 27, 29),
                  (2 ** 62, 784), (2 ** 63, 784), (2 ** 64, 784), (2 ** 64 - 1, 2 ** 64 - 1), (10, 2 ** 40, 2 ** 40),
                  (0, 0)]
    for shape in bad_shapes:
        def s(d, shape=shape):
            m = base(d)
            p = W(d, "x.npy", npy(shape, IMG))
            return FAIL(1, ["classify", m, p], p)
        add(C, "npy shape %s" % (shape,), s)

    def s(d):
        m = base(d)
        p = W(d, "x.npy", npy((0, 784), b""))
        return OK(["classify", m, p], check=rows_check(0))
    add(C, "npy no images", s)
    for shape in [(10, 784), (10, 784, 1), (10, 1, 784)]:
        def s(d, shape=shape):
            m = model(d, "mnist-cnn-small.bnn")
            p = W(d, "x.npy", npy(shape, IMG))
            return FAIL(1, ["classify", m, p], p, "28x28x1")
        add(C, "npy cnn refuses %s" % (shape,), s)

    def s(d):
        m = model(d, "mnist-cnn-small.bnn")
        p = W(d, "x.npy", npy((10, 28, 28, 1), IMG))
        return OK(["classify", m, p], check=same_as(m, IMG))
    add(C, "npy cnn (10, 28, 28, 1)", s)
    headers = {
        "fortran order": ("{'descr': '|u1', 'fortran_order': True, 'shape': (10, 784), }", 1),
        "fortran_order 1": ("{'descr': '|u1', 'fortran_order': 1, 'shape': (10, 784), }", 1),
        "fortran_order none": ("{'descr': '|u1', 'fortran_order': None, 'shape': (10, 784), }", 1),
        "shape as list": ("{'descr': '|u1', 'fortran_order': False, 'shape': [10, 784], }", {0, 1}),
        "keys reordered": ("{'shape': (10, 784), 'fortran_order': False, 'descr': '|u1'}", 0),
        "missing shape": ("{'descr': '|u1', 'fortran_order': False}", 1),
        "missing descr": ("{'fortran_order': False, 'shape': (10, 784)}", 1),
        "missing fortran": ("{'descr': '|u1', 'shape': (10, 784)}", 1),
        "extra key": ("{'descr': '|u1', 'fortran_order': False, 'shape': (10, 784), 'x': 1}", {0, 1}),
        "duplicate shape key": ("{'descr': '|u1', 'fortran_order': False, 'shape': (10, 784), 'shape': (5, 784)}", 1),
        "duplicate descr key": ("{'descr': '<f8', 'fortran_order': False, 'shape': (10, 784), 'descr': '|u1'}", 1),
        "not a dict": ("[1, 2, 3]", 1),
        "empty": ("", 1),
        "unterminated string": ("{'descr': '|u1, 'fortran_order': False, 'shape': (10, 784)}", 1),
        "unbalanced": ("{'descr': '|u1', 'fortran_order': False, 'shape': (10, 784}", 1),
        "negative dim": ("{'descr': '|u1', 'fortran_order': False, 'shape': (-10, 784), }", 1),
        "float dim": ("{'descr': '|u1', 'fortran_order': False, 'shape': (10.0, 784), }", 1),
        "hex dim": ("{'descr': '|u1', 'fortran_order': False, 'shape': (0xa, 784), }", 1),
        "underscore dim": ("{'descr': '|u1', 'fortran_order': False, 'shape': (1_0, 784), }", {0, 1}),
        "long dim": ("{'descr': '|u1', 'fortran_order': False, 'shape': (10L, 784L), }", {0, 1}),
        "true lowercase": ("{'descr': '|u1', 'fortran_order': false, 'shape': (10, 784), }", 1),
        "nested 10000": ("{'descr': '|u1', 'fortran_order': False, 'shape': " + "(" * 10000 + ")" * 10000 + "}", 1),
        "nested dicts": ("{'descr': '|u1', 'fortran_order': False, 'shape': (10, 784), 'x': " + "{'a': " * 5000 + "1" + "}" * 5000 + "}", 1),
        "nul byte": ("{'descr': '|u1\x00', 'fortran_order': False, 'shape': (10, 784), }", 1),
        "control bytes in key": ("{'\x1b[2J\x1b[31mpwned': 1, 'descr': '|u1', 'fortran_order': False, 'shape': (10, 784)}", {0, 1}),
        "non-ascii": ("{'descr': '|u1', 'fortran_order': False, 'shape': (10, 784), 'é': 1}", {0, 1}),
        "giant number": ("{'descr': '|u1', 'fortran_order': False, 'shape': (" + "9" * 5000 + ", 784), }", 1),
        "many dims": ("{'descr': '|u1', 'fortran_order': False, 'shape': (" + "1, " * 100000 + "), }", 1),
    }
    for name, (header, code) in headers.items():
        def s(d, header=header, code=code):
            m = base(d)
            p = W(d, "h.npy", npy(header=header, data=IMG, version=(2, 0) if len(header) > 60000 else (1, 0)))
            if code == 0:
                return OK(["classify", m, p], check=same_as(m, IMG))
            return dict(args=["classify", m, p], code=code, needles=[p], check=same_as(m, IMG))
        add(C, "npy header %s" % name, s)
    for version, code in [((2, 0), 0), ((3, 0), 0), ((0, 0), 1), ((4, 0), 1), ((1, 1), {0, 1}), ((255, 255), 1)]:
        def s(d, version=version, code=code):
            m = base(d)
            p = W(d, "v.npy", npy((10, 784), IMG, version=version))
            if code == 0:
                return OK(["classify", m, p], check=same_as(m, IMG))
            return dict(args=["classify", m, p], code=code, needles=[p], check=same_as(m, IMG))
        add(C, "npy version %d.%d" % version, s)
    good_npy = npy((10, 784), IMG)
    for cut in [0, 5, 6, 9, 10, 50, 127, 128, 129, len(good_npy) - 1]:
        def s(d, cut=cut):
            m = base(d)
            p = W(d, "cut.npy", good_npy[:cut])
            return FAIL(1, ["classify", m, p], p)
        add(C, "npy truncated at %d" % cut, s)
    for extra in [b"\x00", IMG[:784], b"trailing text\n"]:
        def s(d, extra=extra):
            m = base(d)
            p = W(d, "tail.npy", good_npy + extra)
            return FAIL(1, ["classify", m, p], p, "trailing")
        add(C, "npy trailing %d bytes" % len(extra), s)

    def s(d):
        m = base(d)
        p = W(d, "big.npy", b"\x93NUMPY\x02\x00" + struct.pack("<I", 0xFFFFFFFF) + b"{")
        return FAIL(1, ["classify", m, p], p)
    add(C, "npy header length 4 GiB", s)

    def s(d):
        m = base(d)
        p = W(d, "nonl.npy", npy((10, 784), IMG, newline=False))
        return dict(args=["classify", m, p], code={0, 1}, needles=[p], check=same_as(m, IMG))
    add(C, "npy header without newline", s)

    def s(d):
        m = base(d)
        p = W(d, "x.npy.gz", gz(good_npy))
        return FAIL(1, ["classify", m, p], p)
    add(C, "npy gzipped", s)


GRAY = None  # the first test image, 784 bytes

# Broken images that decoders commonly accept, and bnn with them: indexes
# past a short palette read as black (libpng: a benign error), compressed
# data past the last scanline is not read (libpng: "extra compressed data",
# benign), and a PGM header needs no space after its magic number (the
# image read is the one intended). Either reading or refusing is right.
LENIENT = {"png palette 2 entries", "png idat bomb", "pgm no whitespace"}


def image_cases():
    g = lambda: GRAY
    variants = {
        "png gray8": lambda: png(g()),
        "png gray16": lambda: png(g(), depth=16),
        "png rgb8": lambda: png(g(), ctype=2),
        "png rgb16": lambda: png(g(), ctype=2, depth=16),
        "png rgba8": lambda: png(g(), ctype=6),
        "png rgba16": lambda: png(g(), ctype=6, depth=16),
        "png gray+alpha8": lambda: png(g(), ctype=4),
        "png gray+alpha16": lambda: png(g(), ctype=4, depth=16),
        "png palette8": lambda: png(g(), ctype=3),
        "png palette8 with tRNS": lambda: png(g(), ctype=3, trns=bytes(range(256))),
        "png gray8 with tRNS": lambda: png(g(), trns=b"\x00\x00"),
        "png interlaced gray8": lambda: png(g(), interlace=1),
        "png interlaced rgb16": lambda: png(g(), ctype=2, depth=16, interlace=1),
        "png gray8 text chunks": lambda: png(g(), before_iend=chunk(b"tEXt", b"Comment\x00\x1b[31mhi")),
        "png idat split": lambda: (lambda raw: PNG_SIG + chunk(b"IHDR", struct.pack(">IIBBBBB", 28, 28, 8, 0, 0, 0, 0))
                                   + chunk(b"IDAT", raw[:100]) + chunk(b"IDAT", raw[100:]) + chunk(b"IEND", b""))(
            zlib.compress(b"".join(b"\x00" + g()[y * 28:(y + 1) * 28] for y in range(28)))),
        "pgm P5": lambda: pgm(g()),
        "pgm P2": lambda: pgm(g(), text=True),
        "pgm P5 comments": lambda: pgm(g(), head="P5 # c\n# another\n28 # w\n28\n255\n"),
        "pgm P5 16-bit": lambda: pgm(g(), maxval=65535),
    }
    for name, make in variants.items():
        def s(d, make=make, name=name):
            m = model(d)
            p = W(d, "img.png" if "png" in name else "img.pgm", make())
            return OK(["classify", m, p], check=same_as(m, GRAY))
        add(C, "image %s" % name, s)
    # Low bit depths are scaled to 0..255.
    for depth in (1, 2, 4):
        for ctype in (0, 3):
            for inter in (0, 1):
                def s(d, depth=depth, ctype=ctype, inter=inter):
                    m = model(d)
                    p = W(d, "low.png", png(GRAY, depth=depth, ctype=ctype, interlace=inter))
                    return OK(["classify", m, p], check=same_as(m, quantized(GRAY, depth)))
                add(C, "image png %s %d-bit%s" % ("gray" if ctype == 0 else "palette", depth,
                                                  " interlaced" if inter else ""), s)
    for maxval in (1, 15, 100, 1000):
        def s(d, maxval=maxval):
            m = model(d)
            data = pgm(GRAY, maxval=maxval)
            vals = [round(v * maxval / 255) for v in GRAY]
            p = W(d, "mv.pgm", data)
            return OK(["classify", m, p], check=same_as(m, bytes((v * 255 + maxval // 2) // maxval for v in vals)))
        add(C, "image pgm maxval %d" % maxval, s)
    raw = b"".join(b"\x00" + GRAY[y * 28:(y + 1) * 28] for y in range(28))
    broken = {
        "png bad crc": lambda: png(GRAY)[:-20] + b"\x00\x00\x00\x00" + png(GRAY)[-16:],
        "png truncated idat": lambda: png_raw(28, 28, 8, 0, raw, idat=zlib.compress(raw)[:50]),
        "png no iend": lambda: png(GRAY, iend=False),
        "png trailing bytes": lambda: png(GRAY, after=b"junk"),
        "png second image appended": lambda: png(GRAY) + png(GRAY),
        "png width 0": lambda: png_raw(0, 28, 8, 0, b""),
        "png 2^31 x 2^31": lambda: png_raw(2 ** 31 - 1, 2 ** 31 - 1, 8, 0, b"\x00"),
        "png 100000x100000": lambda: png_raw(100000, 100000, 8, 0, b"\x00"),
        "png depth 3": lambda: png_raw(28, 28, 3, 0, raw),
        "png color type 5": lambda: png_raw(28, 28, 8, 5, raw),
        "png palette missing": lambda: png(GRAY, ctype=3, plte=b""),
        # Indexes past a short palette decode as black, as in libpng (a benign error there).
        "png palette 2 entries": lambda: png(GRAY, ctype=3, plte=b"\x00\x00\x00\xff\xff\xff"),
        "png palette 257 entries": lambda: png(GRAY, ctype=3, plte=b"\x01\x02\x03" * 257),
        "png palette 7 bytes": lambda: png(GRAY, ctype=3, plte=b"\x00" * 7),
        "png chunk length 4 GiB": lambda: PNG_SIG + struct.pack(">I", 0xFFFFFFFF) + b"IHDR" + b"\x00" * 20,
        "png unknown critical chunk": lambda: png(GRAY, before_iend=chunk(b"ABCD", b"x")),
        "png unknown critical chunk before IDAT": lambda: png(GRAY, trns=None, plte=None)[:33] + chunk(b"ABCD", b"x") + png(GRAY)[33:],
        "png bad crc after IDAT": lambda: png(GRAY, before_iend=chunk(b"tEXt", b"a\x00b", crc=0)),
        "png IEND with data": lambda: png(GRAY, iend=False, after=chunk(b"IEND", b"xx")),
        "png idat bomb": lambda: png_raw(28, 28, 8, 0, b"", idat=zlib.compress(raw + bytes(64 << 20), 9)),
        "png bad filter type": lambda: png_raw(28, 28, 8, 0, b"".join(b"\x07" + GRAY[y * 28:(y + 1) * 28] for y in range(28))),
        "png short scanlines": lambda: png_raw(28, 28, 8, 0, raw[:500]),
        "png signature only": lambda: PNG_SIG,
        "png ihdr short": lambda: PNG_SIG + chunk(b"IHDR", b"\x00\x00\x00\x1c"),
        "png interlace 2": lambda: png_raw(28, 28, 8, 0, raw, interlace=2),
        "png 28x27": lambda: png(GRAY[:28 * 27], h=27),
        "png 56x14": lambda: png(GRAY, w=56, h=14),
        "pgm maxval 0": lambda: pgm(GRAY, head="P5\n28 28\n0\n"),
        "pgm maxval 70000": lambda: pgm(GRAY, head="P5\n28 28\n70000\n"),
        "pgm width 0": lambda: b"P5\n0 28\n255\n",
        "pgm huge": lambda: b"P5\n99999999 99999999\n255\n" + GRAY,
        "pgm negative": lambda: pgm(GRAY, head="P5\n-28 28\n255\n"),
        "pgm truncated": lambda: pgm(GRAY)[:-1],
        "pgm trailing": lambda: pgm(GRAY, tail=b"\x00"),
        "pgm second image": lambda: pgm(GRAY) + pgm(GRAY),
        "pgm P2 sample over maxval": lambda: b"P2\n2 1\n10\n5 11\n",
        "pgm P2 truncated": lambda: pgm(GRAY, text=True)[:-40],
        "pgm P2 junk": lambda: pgm(GRAY, text=True) + b"x",
        "pgm header only": lambda: b"P5\n",
        "pgm no whitespace": lambda: b"P528 28 255 " + GRAY,
        "pgm number overflow": lambda: b"P5\n" + b"9" * 40 + b" 28\n255\n" + GRAY,
        "ppm P6": lambda: b"P6\n28 28\n255\n" + GRAY * 3,
        "pbm P4": lambda: b"P4\n28 28\n" + bytes(28 * 4),
        "pgm 28x27": lambda: pgm(GRAY[:28 * 27], h=27),
    }
    for name, make in broken.items():
        for mdl in (["seed.bnn"] + (["mnist-cnn-small.bnn"] if "28x27" in name or "56x14" in name else [])):
            def s(d, make=make, mdl=mdl, name=name):
                m = model(d, mdl)
                p = W(d, "b.png" if "png" in name else "b.pgm", make())
                code = 1
                if name in LENIENT:
                    code = {0, 1}
                if name == "png 56x14" and mdl == "seed.bnn":
                    # 784 pixels: a model that records no shape takes any 784 values.
                    return OK(["classify", m, p], check=same_as(m, GRAY))
                return FAIL(code, ["classify", m, p], p)
            add(C, "image %s (%s)" % (name, mdl), s)
    # Recognised by content, not name.
    def s(d):
        m = model(d)
        p = W(d, "digit.png", pgm(GRAY))
        return OK(["classify", m, p], check=same_as(m, GRAY))
    add(C, "image pgm named .png", s)

    def s(d):
        m = model(d)
        p = W(d, "digit.idx", png(GRAY))
        return OK(["classify", m, p], check=same_as(m, GRAY))
    add(C, "image png named .idx", s)

    def s(d):
        m = model(d)
        os.mkdir(os.path.join(d, "dir"))
        p = W(d, "dir/x.png", b"this is text\n")
        return FAIL(1, ["classify", m, os.path.join(d, "dir")], p)
    add(C, "dir text named .png", s)


def dir_cases():
    def imgs(d, names, sub="digits"):
        p = os.path.join(d, sub)
        os.makedirs(p, exist_ok=True)
        for i, n in enumerate(names):
            W(p, n, png(IMG[784 * i:784 * (i + 1)]))
        return p

    def s(d):
        m = model(d)
        p = imgs(d, ["b.png", "a.png", "c.PNG"])
        order = IMG[784:1568] + IMG[:784] + IMG[1568:2352]
        return OK(["classify", m, p], check=same_as(m, order, sources=[(os.path.join(p, n), 0) for n in ["a.png", "b.png", "c.PNG"]]))
    add(C, "dir sorted by name", s)

    def s(d):
        m = model(d)
        p = imgs(d, ["a.png"])
        imgs(d, ["z.png"], sub="digits/sub")
        W(p, "notes.txt", b"hello")
        return OK(["classify", m, p], check=same_as(m, IMG[:784]))
    add(C, "dir subdir and other files ignored", s)

    def s(d):
        m = model(d)
        p = imgs(d, ["a.png"])
        return OK(["classify", m, p + "/", p], check=same_as(m, IMG[:784] * 2))
    add(C, "dir twice, trailing slash", s)

    for name, make, needle in [
        ("empty", lambda p: None, "no .png or .pgm"),
        ("only text", lambda p: W(p, "a.txt", b"x"), "no .png or .pgm"),
        ("subdir named .png", lambda p: os.mkdir(os.path.join(p, "x.png")), "x.png"),
        ("fifo named .png", lambda p: fifo(p, "x.png"), "x.png"),
        ("device named .pgm", lambda p: mknod(p, "x.pgm", 3), "x.pgm"),
        ("broken link named .png", lambda p: os.symlink("nowhere.png", os.path.join(p, "x.png")), "x.png"),
        ("looping link named .png", lambda p: os.symlink("x.png", os.path.join(p, "x.png")), "x.png"),
        ("link to dir named .png", lambda p: os.symlink(".", os.path.join(p, "x.png")), "x.png"),
        ("empty file named .png", lambda p: W(p, "x.png", b""), "x.png"),
        ("socketless unix name", lambda p: W(p, "x.pgm", b"P5\n"), "x.pgm"),
    ]:
        def s(d, make=make, needle=needle, name=name):
            m = model(d)
            p = os.path.join(d, "in")
            os.mkdir(p)
            if name not in ("empty", "only text"):
                W(p, "a.png", png(GRAY))
            make(p)
            return FAIL(1, ["classify", m, p], needle, p)
        add(C, "dir with %s" % name, s)

    def s(d):
        m = model(d)
        p = imgs(d, ["a.png"])
        os.symlink(os.path.join(d, "elsewhere.png"), os.path.join(p, "b.png"))
        W(d, "elsewhere.png", png(IMG[784:1568]))
        return OK(["classify", m, p], check=same_as(m, IMG[:1568]))
    add(C, "dir with link to an image outside", s)

    def s(d):
        m = model(d)
        p = imgs(d, ["a.png"])
        os.symlink(p, os.path.join(p, "loop"))
        return OK(["classify", m, p], check=same_as(m, IMG[:784]))
    add(C, "dir with a loop not named as image", s)

    def s(d):
        m = model(d)
        p = imgs(d, ["a.png"])
        os.chmod(p, 0o755)
        os.chmod(os.path.join(p, "a.png"), 0o000)
        return FAIL(1, ["classify", m, p], os.path.join(p, "a.png"), "ermission", nobody=True)
    add(C, "dir with unreadable image (as nobody)", s)

    def s(d):
        m = model(d)
        p = imgs(d, ["a.png"])
        os.chmod(p, 0o300)
        return FAIL(1, ["classify", m, p], p, "ermission", nobody=True)
    add(C, "unlistable dir (as nobody)", s)

    def s(d):
        m = model(d)
        p = imgs(d, ["a.png"])
        os.chmod(p, 0o755)
        os.chmod(m, 0o000)
        return FAIL(1, ["classify", m, p], m, "ermission", nobody=True)
    add(C, "unreadable model (as nobody)", s)
    # Names that CSV and JSON must quote.
    for fname in ["a,b.png", 'q"uote.png', "new\nline.png", "tab\t.png", "esc\x1b[31m.png", "ünï.png", " lead.png"]:
        for fmt in ("csv", "json"):
            def s(d, fname=fname, fmt=fmt):
                m = model(d)
                p = os.path.join(d, "in")
                os.mkdir(p)
                W(p, fname, png(GRAY))
                full = os.path.join(p, fname)

                def check(res, ctx):
                    if fmt == "csv":
                        rows = parse_csv(res["stdout"])
                        if len(rows) != 1 or rows[0][0] != full:
                            return "CSV source field %r, expected %r" % (rows[0][0] if rows else None, full)
                    else:
                        data = json.loads(res["stdout"])
                        if len(data) != 1 or data[0].get("source") != full:
                            return "JSON source %r, expected %r" % (data, full)
                    return None
                return OK(["classify", m, p, "--format", fmt], check=check)
            add(C, "dir file name %r as %s" % (fname, fmt), s)


def stream_cases():
    inputs = {
        "idx": lambda: idx([10, 28, 28], IMG),
        "idx gzip": lambda: gz(idx([10, 28, 28], IMG)),
        "npy": lambda: npy((10, 784), IMG),
        "npy (10, 28, 28)": lambda: npy((10, 28, 28), IMG),
    }
    for name, make in inputs.items():
        def s(d, make=make):
            m = model(d)
            return OK(["classify", m, "/dev/stdin"], stdin=make(), check=same_as(m, IMG))
        add(C, "stdin %s" % name, s)

        def s(d, make=make):
            m = model(d)
            f = fifo(d, "in.fifo")
            return OK(["classify", m, f], feed={f: make()}, check=same_as(m, IMG))
        add(C, "fifo %s" % name, s)
    for name, make in {"png": lambda: png(GRAY), "pgm": lambda: pgm(GRAY)}.items():
        def s(d, make=make):
            m = model(d)
            return OK(["classify", m, "/dev/stdin"], stdin=make(), check=same_as(m, GRAY))
        add(C, "stdin %s" % name, s)

        def s(d, make=make):
            m = model(d)
            f = fifo(d, "in.fifo")
            return OK(["classify", m, f], feed={f: make()}, check=same_as(m, GRAY))
        add(C, "fifo %s" % name, s)
    bad = {
        "npy truncated": lambda: npy((10, 784), IMG)[:-1],
        "npy trailing": lambda: npy((10, 784), IMG) + b"x",
        "idx truncated": lambda: idx([10, 28, 28], IMG)[:-1],
        "idx trailing": lambda: idx([10, 28, 28], IMG) + b"x",
        "idx claims 2^32-1": lambda: idx([2 ** 32 - 1, 28, 28], IMG),
        "png trailing": lambda: png(GRAY) + b"x",
        "pgm truncated": lambda: pgm(GRAY)[:-1],
        "empty": lambda: b"",
        "text": lambda: b"hello\n",
        "png signature only": lambda: PNG_SIG,
    }
    for name, make in bad.items():
        def s(d, make=make):
            m = model(d)
            return FAIL(1, ["classify", m, "/dev/stdin"], "/dev/stdin", stdin=make(), partial=True)
        add(C, "stdin %s" % name, s)

        def s(d, make=make):
            m = model(d)
            f = fifo(d, "in.fifo")
            return FAIL(1, ["classify", m, f], f, feed={f: make()}, partial=True)
        add(C, "fifo %s" % name, s)

    def s(d):
        m = model(d)
        z = mknod(d, "zero", 5)
        return FAIL(1, ["classify", m, z], z)
    add(C, "input is a zero device", s)

    def s(d):
        m = model(d)
        z = mknod(d, "null", 3)
        return FAIL(1, ["classify", m, z], z)
    add(C, "input is a null device", s)

    def s(d):
        m = model(d)
        return FAIL(1, ["classify", m, os.path.join(d, "missing.idx")], "missing.idx", "No such file")
    add(C, "input missing", s)

    def s(d):
        m = model(d)
        p = os.path.join(d, "loop")
        os.symlink(p, p)
        return FAIL(1, ["classify", m, p], p)
    add(C, "input is a looping link", s)

    def s(d):
        m = model(d)
        return FAIL(2, ["classify", m, ""], "INPUT")
    add(C, "input is the empty string", s)


def output_cases():
    def base(d):
        m = model(d)
        p = W(d, "x.idx", idx([10, 28, 28], IMG))
        return m, p

    def s(d):
        m, p = base(d)
        o = os.path.join(d, "out.csv")
        return OK(["classify", m, p, "-o", o], outputs=[o], check=same_as(m, IMG, where=o))
    add(C, "-o new file", s)

    for mode in (0o640, 0o600, 0o444, 0o2755 & 0o777):
        def s(d, mode=mode):
            m, p = base(d)
            o = W(d, "out.csv", b"old\n", mode=mode)
            os.chown(o, 1234, 5678)
            return OK(["classify", m, p, "-o", o], outputs=[o], check=same_as(m, IMG, where=o))
        add(C, "-o existing file mode %o owned by 1234" % mode, s)

    def s(d):
        m, p = base(d)
        t = W(d, "target.csv", b"old\n", mode=0o640)
        o = os.path.join(d, "link.csv")
        os.symlink("target.csv", o)
        return OK(["classify", m, p, "-o", o], outputs=[t], check=same_as(m, IMG, where=t))
    add(C, "-o link to a file", s)

    def s(d):
        m, p = base(d)
        o = os.path.join(d, "dangling.csv")
        os.symlink("created.csv", o)
        t = os.path.join(d, "created.csv")
        return OK(["classify", m, p, "-o", o], outputs=[t], check=same_as(m, IMG, where=t))
    add(C, "-o dangling link", s)

    def s(d):
        m, p = base(d)
        o = os.path.join(d, "dangling.csv")
        os.symlink("nodir/created.csv", o)
        return FAIL(2, ["classify", m, p, "-o", o], "nodir")
    add(C, "-o dangling link into a missing dir", s)

    def s(d):
        m, p = base(d)
        os.mkdir(os.path.join(d, "sub"))
        o = os.path.join(d, "l")
        os.symlink("sub", o)
        return FAIL(2, ["classify", m, p, "-o", o], o, "directory")
    add(C, "-o link to a directory", s)

    for o_rel, needle in [("sub", "is a directory"), (".", "directory"), ("sub/", "directory"),
                          ("missing/out.csv", "does not exist"), ("missing/deeper/out.csv", "does not exist")]:
        def s(d, o_rel=o_rel, needle=needle):
            m, p = base(d)
            os.mkdir(os.path.join(d, "sub"))
            o = os.path.join(d, o_rel)
            return FAIL(2, ["classify", m, p, "-o", o], needle)
        add(C, "-o %s" % o_rel, s)

    for o_rel in ["notes.txt/x.csv", "notes.txt/a/b.csv"]:
        def s(d, o_rel=o_rel):
            m, p = base(d)
            W(d, "notes.txt", b"keep me")
            o = os.path.join(d, o_rel)
            return FAIL(2, ["classify", m, p, "-o", o], os.path.join(d, "notes.txt"), "not a directory")
        add(C, "-o file as dir %s" % o_rel, s)

    def s(d):
        m, p = base(d)
        return FAIL(2, ["classify", m, p, "-o", p], p, "same file as the input")
    add(C, "-o the input", s)

    def s(d):
        m, p = base(d)
        return FAIL(2, ["classify", m, p, "-o", m], m, "same file as the input")
    add(C, "-o the model", s)

    def s(d):
        m, p = base(d)
        h = os.path.join(d, "hard.idx")
        os.link(p, h)
        return FAIL(2, ["classify", m, p, "-o", h], h, "same file as the input")
    add(C, "-o a hard link of the input", s)

    def s(d):
        m, p = base(d)
        h = os.path.join(d, "soft.idx")
        os.symlink(p, h)
        return FAIL(2, ["classify", m, p, "-o", h], h, "same file as the input")
    add(C, "-o a symlink to the input", s)

    def s(d):
        m, p = base(d)
        return FAIL(2, ["classify", m, p, "-o", os.path.join(d, "sub", "..", "x.idx")], "same file as the input",
                    pre=lambda: os.mkdir(os.path.join(d, "sub")))
    add(C, "-o the input spelled with ..", s)

    def s(d):
        m = model(d)
        q = os.path.join(d, "in")
        os.mkdir(q)
        img = W(q, "a.png", png(GRAY))
        return FAIL(2, ["classify", m, q, "-o", img], img, "same file as the input")
    add(C, "-o an image inside the input dir", s)

    def s(d):
        m, p = base(d)
        f = mknod(d, "full", 7)
        return FAIL(1, ["classify", m, p, "-o", f], f, "No space left")
    add(C, "-o full device", s)

    def s(d):
        m, p = base(d)
        n = mknod(d, "null", 3)
        return OK(["classify", m, p, "-o", n])
    add(C, "-o null device", s)

    def s(d):
        m, p = base(d)
        z = mknod(d, "zero", 5)
        return OK(["classify", m, p, "-o", z])
    add(C, "-o zero device", s)

    def s(d):
        m, p = base(d)
        f = fifo(d, "out.fifo")

        def check(res, ctx):
            return same_as(m, IMG)(dict(stdout=res["drained"][f].decode()), ctx)
        return OK(["classify", m, p, "-o", f], drain=[f], check=check)
    add(C, "-o fifo with a reader", s)

    def s(d):
        m, p = base(d)
        return OK(["classify", m, p, "-o", "/dev/stdout"], check=same_as(m, IMG))
    add(C, "-o /dev/stdout", s)

    def s(d):
        m, p = base(d)
        return OK(["classify", m, p, "-o", "/dev/fd/1"], check=same_as(m, IMG))
    add(C, "-o /dev/fd/1", s)

    def s(d):
        m, p = base(d)
        link = os.path.join(d, "so")
        os.symlink("/dev/stdout", link)
        return OK(["classify", m, p, "-o", link], check=same_as(m, IMG))
    add(C, "-o link to /dev/stdout", s)

    def s(d):
        m, p = base(d)
        return FAIL(2, ["classify", m, p, "-o", "/dev/fd/7"], "/dev/fd/7", "not an open file descriptor")
    add(C, "-o closed /dev/fd/7", s)

    def s(d):
        m, p = base(d)
        log = W(d, "log.csv", b"previous line\n")

        def check(res, ctx):
            text = open(log).read()
            if not text.startswith("previous line\n"):
                return "descriptor output did not append"
            return same_as(m, IMG)(dict(stdout=text[len("previous line\n"):]), ctx)
        return OK(["classify", m, p, "-o", "/dev/fd/5"], wrap='5>>"%s"' % log, outputs=[log], check=check)
    add(C, "-o /dev/fd/5 opened for append", s)

    def s(d):
        m, p = base(d)
        notes = W(d, "notes.txt", b"keep")
        return FAIL(2, ["classify", m, p, "-o", "/dev/fd/3"], "/dev/fd/3", "reading only", wrap='3<"%s"' % notes)
    add(C, "-o /dev/fd/3 open for reading", s)

    def s(d):
        m, p = base(d)
        notes = W(d, "notes.txt", b"keep")
        return FAIL(2, ["classify", m, p, "-o", "/dev/stdin"], "/dev/stdin", "reading only", wrap='<"%s"' % notes)
    add(C, "-o /dev/stdin reading a file", s)

    def s(d):
        m, p = base(d)
        notes = W(d, "notes.txt", b"keep")

        def check(res, ctx):
            text = open(notes).read()
            return None if text.startswith("keepsource,index") else "not appended: %r" % text[:40]
        return OK(["classify", m, p, "-o", "/dev/fd/3"], wrap='3<>"%s"' % notes, outputs=[notes], check=check)
    add(C, "-o /dev/fd/3 open for reading and writing", s)

    def s(d):
        m, p = base(d)
        return FAIL(1, ["classify", m, p], "stdout is closed", wrap=">&-")
    add(C, "stdout closed", s)

    def s(d):
        m, p = base(d)
        return FAIL(1, ["classify", m, p, "-o", "/dev/stdout"], "stdout", wrap=">&-")
    add(C, "stdout closed, -o /dev/stdout", s)

    def s(d):
        m, p = base(d)
        o = os.path.join(d, "o.csv")
        return OK(["classify", m, p, "-o", o], wrap=">&-", outputs=[o], check=same_as(m, IMG, where=o))
    add(C, "stdout closed, -o file", s)

    def s(d):
        m, p = base(d)
        f = mknod(d, "full", 7)
        return FAIL(1, ["classify", m, p], "stdout", "No space left", wrap='>"%s"' % f)
    add(C, "stdout is a full device", s)

    def s(d):
        m, p = base(d)
        f = mknod(d, "full", 7)
        return OK(["classify", m, p], wrap='2>"%s"' % f, check=same_as(m, IMG), stderr_any=True)
    add(C, "stderr is a full device", s)

    def s(d):
        m, p = base(d)
        o = os.path.join(d, "o.csv")
        return OK(["classify", m, p, "-o", o], wrap="2>&-", outputs=[o], check=same_as(m, IMG, where=o),
                  stderr_any=True)
    add(C, "stderr closed", s)

    def s(d):
        m, p = base(d)
        return FAIL(2, ["classify", m, p, "-o", ""], "")
    add(C, "-o empty string", s)

    def s(d):
        m, p = base(d)
        o = os.path.join(d, "x" * 255)
        return OK(["classify", m, p, "-o", o], outputs=[o], check=same_as(m, IMG, where=o))
    add(C, "-o 255-byte name", s)

    def s(d):
        m, p = base(d)
        o = os.path.join(d, "x" * 256)
        return FAIL(1, ["classify", m, p, "-o", o], "too long")
    add(C, "-o 256-byte name", s)

    def s(d):
        m, p = base(d)
        q = os.path.join(d, "ro")
        os.mkdir(q)
        os.chmod(q, 0o555)
        return FAIL(1, ["classify", m, p, "-o", os.path.join(q, "o.csv")], os.path.join(q, "o.csv"), "ermission",
                    nobody=True)
    add(C, "-o in an unwritable dir (as nobody)", s)

    def s(d):
        m, p = base(d)
        o = W(d, "ro.csv", b"old\n", mode=0o444)
        return FAIL(1, ["classify", m, p, "-o", o], o, "ermission", nobody=True)
    add(C, "-o a read-only file (as nobody)", s)

    def s(d):
        m, p = base(d)
        o = os.path.join(d, "o.csv")
        return FAIL(1, ["classify", m, p, "-o", o], o, "File too large", ulimit_f=10)
    add(C, "-o past ulimit -f", s)

    def s(d):
        m = model(d)
        p = W(d, "bad.idx", idx([10, 28, 28], IMG)[:-1])
        o = W(d, "o.csv", b"keep\n", mode=0o600)
        return FAIL(1, ["classify", m, p, "-o", o], p, outputs=[o])
    add(C, "-o existing file kept when the input is bad", s)

    def s(d):
        m = model(d)
        good = W(d, "good.idx", idx([10, 28, 28], IMG))
        f = fifo(d, "in.fifo")
        o = W(d, "o.csv", b"keep\n")
        return FAIL(1, ["classify", m, good, f, "-o", o], f, feed={f: idx([10, 28, 28], IMG)[:-5]}, outputs=[o])
    add(C, "-o existing file kept when a later streamed input is bad", s)

    # Formats.
    for fmt in ("csv", "json", "npy"):
        for only in (False, True):
            for to_file in (False, True):
                def s(d, fmt=fmt, only=only, to_file=to_file):
                    m, p = base(d)
                    o = os.path.join(d, "o." + fmt)
                    args = ["classify", m, p, "--format", fmt] + (["--classes-only"] if only else []) + (["-o", o] if to_file else [])

                    def check(res, ctx):
                        want = ctx.ref(m, IMG)
                        data = open(o, "rb").read() if to_file else res["stdout_bytes"]
                        if fmt == "csv":
                            rows = parse_csv(data.decode(), scores=not only)
                            got = [(r[2], r[3]) for r in rows]
                            exp = [(c, s_ if not only else ()) for c, s_ in want]
                            return None if got == exp else "CSV rows differ from the reference"
                        if fmt == "json":
                            arr = json.loads(data)
                            if len(arr) != len(want):
                                return "%d JSON objects, expected %d" % (len(arr), len(want))
                            for obj, (c, sc) in zip(arr, want):
                                if obj.get("class") != c:
                                    return "JSON class %r, expected %r" % (obj.get("class"), c)
                                js = [obj.get("score_%d" % k) for k in range(10)]
                                if not only and js != list(sc):
                                    return "JSON scores differ: %r vs %r" % (js[:2], sc[:2])
                                if only and "score_0" in obj:
                                    return "--classes-only JSON has scores"
                            return None
                        header, body = parse_npy_out(data)
                        if only:
                            if "'<i8'" not in header or "(10,)" not in header or len(body) != 80:
                                return "npy classes header %r, %d bytes" % (header, len(body))
                            got = list(struct.unpack("<10q", body))
                            return None if got == [c for c, _ in want] else "npy classes %r" % got
                        if "(10,)" not in header or len(body) != 10 * (8 + 40):
                            return "npy records header %r, %d bytes" % (header, len(body))
                        for i, (c, sc) in enumerate(want):
                            rec = body[i * 48:(i + 1) * 48]
                            f32 = [struct.unpack("<f", struct.pack("<f", x))[0] for x in sc]
                            if struct.unpack("<q", rec[:8])[0] != c or list(struct.unpack("<10f", rec[8:])) != f32:
                                return "npy record %d differs" % i
                        return None
                    return OK(args, outputs=[o] if to_file else [], check=check)
                add(C, "--format %s%s%s" % (fmt, " --classes-only" if only else "", " -o file" if to_file else ""), s)
    for bad in ["xml", "", "CSV ", "npz", "\x1b[2J\x1b[31m", "x" * 5000, "c\rsv"]:
        def s(d, bad=bad):
            m, p = base(d)
            return FAIL(2, ["classify", m, p, "--format", bad], "--format")
        add(C, "--format %r" % bad, s)

    def s(d):
        m, p = base(d)
        o = os.path.join(d, "o.csv")
        return FAIL(2, ["classify", m, p, "-o", o, "-o", o], "-o")
    add(C, "-o given twice", s)

    def s(d):
        m, p = base(d)
        return FAIL(2, ["classify", m], "INPUT")
    add(C, "no inputs", s)


def kernel_cases():
    avail = KERNELS

    def base(d):
        m = model(d)
        p = W(d, "x.idx", idx([10, 28, 28], IMG))
        return m, p
    env_cases = []
    for k in ["scalar", "avx2", "avx512"]:
        env_cases.append(({"BNN_KERNEL": k}, 0 if k in avail else 2))
    for v in ["AVX2", "Scalar", "", " scalar", "scalar ", "bogus", "avx512\x1b[31m", "neon", "avx-512"]:
        env_cases.append(({"BNN_KERNEL": v}, {0, 2}))
    for v in ["auto", "dense", "sparse"]:
        env_cases.append(({"BNN_LAYER": v}, 0))
    for v in ["DENSE", "", "bogus", "dense,sparse", " sparse"]:
        env_cases.append(({"BNN_LAYER": v}, {0, 2}))
    for v in ["vnni", "vbmi2", "bmi", "vnni,vbmi2,bmi", "", "vnni,,bmi", " vnni", "bogus", "VNNI", "all"]:
        env_cases.append(({"BNN_FEATURES_OFF": v}, {0, 2}))
    for v in ["1", "2", "1024", "0", "1025", "-1", "abc", "", " 2", "99999999999999999999", "2.0"]:
        env_cases.append(({"RAYON_NUM_THREADS": v}, 0 if v in ("1", "2", "1024", "", " 2") else 2))
    for models in (["seed.bnn"], ["mnist-512-u8.bnn"], ["mnist-cnn-small.bnn"]):
        for env, code in env_cases:
            if models != ["seed.bnn"] and not any(k in env for k in ("BNN_KERNEL", "BNN_LAYER", "BNN_FEATURES_OFF")):
                continue
            def s(d, env=env, code=code, mdl=models[0]):
                m = model(d, mdl)
                p = W(d, "x.idx", idx([10, 28, 28], IMG))

                def check(res, ctx):
                    # Results never depend on the kernel, layer mode or threads.
                    clean = {k: v for k, v in ctx.env.items() if k not in env}
                    ref = subprocess.run([ctx.bnn, "classify", m, p], cwd=ctx.d, env=clean, capture_output=True)
                    if res["stdout"] != ref.stdout.decode():
                        return "output differs from the default kernel's"
                    return None
                name = list(env)[0]
                return dict(args=["classify", m, p], env=env, code=code, needles=[name], check=check)
            add(C, "env %s=%r (%s)" % (list(env)[0], list(env.values())[0], models[0]), s)
    for k in ["scalar", "avx2", "avx512", "AVX512", "Avx2", "neon", "", "auto"]:
        def s(d, k=k):
            m, p = base(d)
            code = 0 if k.lower() in avail else 2
            return dict(args=["classify", m, p, "--kernel", k], code=code, needles=["--kernel"],
                        check=same_as(m, IMG))
        add(C, "--kernel %r" % k, s)
    for t in ["1", "2", "3", "1024", "0", "1025", "-1", "abc", "", "1e3", "99999999999999999999", "+2", "0x2",
              "\x1b]0;title\x07", "9" * 5000, "4\r2", "2\n3"]:
        def s(d, t=t):
            m, p = base(d)
            code = 0 if t in ("1", "2", "3", "1024", "+2") else 2
            return dict(args=["classify", m, p, "--threads", t], code=code, needles=["--threads"],
                        check=same_as(m, IMG))
        add(C, "--threads %r" % t, s)


# ================================================================== models

def model_variants():
    """Crafted and mutated models: name -> (bytes, expected code, needle)."""
    seed = open(os.path.join(WEIGHTS, "seed.bnn"), "rb").read()
    v = {}
    for off in [0, 7, 8, 9, 10, 11, 12, 15, 16, 20, 24, 30, 40, 100, 1000, 30000, len(seed) - 10, len(seed) - 1]:
        b = bytearray(seed)
        b[off] ^= 0x40
        v["seed byte %d flipped" % off] = (bytes(b), 1, None)
    for cut in [0, 1, 7, 8, 9, 23, 24, 39, 40, 41, 200, 50000, len(seed) - 4, len(seed) - 1]:
        v["seed cut at %d" % cut] = (seed[:cut], 1, None)
    v["seed + 1 byte"] = (seed + b"\x00", 1, "trailing")
    v["seed + seed"] = (seed + seed, 1, "trailing")
    v["crafted 16-8-3"] = (bnn_v1(), 0, None)
    v["crafted version 0"] = (bnn_v1(version=0), 1, "version")
    v["crafted version 4"] = (bnn_v1(version=4), 1, "version")
    v["crafted version 65535"] = (bnn_v1(version=65535), 1, "version")
    v["crafted rule 2"] = (bnn_v1(rule=2), 1, None)
    v["crafted rule 255"] = (bnn_v1(rule=255), 1, None)
    v["crafted input 0"] = (bnn_v1(n0=0), 1, None)
    v["crafted input 2^24+1"] = (bnn_v1(n0=2 ** 24 + 1, body=b""), 1, None)
    v["crafted input 2^32-1"] = (bnn_v1(n0=2 ** 32 - 1, body=b""), 1, None)
    v["crafted no layers"] = (bnn_v1(layers=()), 1, None)
    v["crafted 1025 layers"] = (bnn_v1(layers=[(1, 0, 2)] * 1024 + [(1, 1, 0)], body=b""), 1, None)
    v["crafted 2^31 neurons"] = (bnn_v1(layers=((2 ** 31, 0, 2), (3, 1, 0)), body=b""), 1, None)
    v["crafted desc 2^20+1"] = (bnn_v1(desc=b"x" * (2 ** 20 + 1)), 1, None)
    v["crafted desc claims 4 GiB"] = (BNN_MAGIC + struct.pack("<HBBIII", 1, 1, 128, 16, 2, 0xFFFFFFFF), 1, None)
    v["crafted desc not utf-8"] = (bnn_v1(desc=b"\xff\xfe bad"), {0, 1}, None)
    v["crafted desc with escapes"] = (bnn_v1(desc=b"\x1b[2J\x1b[31mred\rover\x07bell\x7f"), 0, None)
    v["crafted desc with C1 CSI"] = (bnn_v1(desc="\u009b31mred \u202eevil".encode()), 0, None)
    v["crafted desc with NUL"] = (bnn_v1(desc=b"a\x00b"), 0, None)
    v["crafted threshold width 3"] = (bnn_v1(layers=((8, 0, 3), (3, 1, 0))), 1, None)
    # A writer uses i32 thresholds only when one needs them: the reader holds it to that.
    v["crafted threshold width 4"] = (bnn_v1(layers=((8, 0, 4), (3, 1, 0))), 1, "fit in 2")
    v["crafted hidden last"] = (bnn_v1(layers=((8, 0, 2), (3, 0, 2))), 1, None)
    v["crafted output first"] = (bnn_v1(layers=((8, 1, 0), (3, 1, 0))), 1, None)
    v["crafted kind 7"] = (bnn_v1(layers=((8, 7, 2), (3, 1, 0))), 1, None)
    v["crafted nan bias"] = (bnn_v1(bias=struct.pack("<3f", 0.0, float("nan"), 1.0)), 1, None)
    v["crafted inf bias"] = (bnn_v1(bias=struct.pack("<3f", 0.0, float("inf"), 1.0)), 1, None)
    v["crafted flip byte 2"] = (bnn_v1(flips=b"\x02"), 0, None)
    v["crafted flip padding bits"] = (bnn_v1(layers=((5, 0, 2), (3, 1, 0)), flips=b"\xe0"), 1, None)
    v["crafted bad crc"] = (bnn_v1(fix_crc=False), 1, "checksum")
    v["crafted threshold i16 min"] = (bnn_v1(thresholds=lambda m: struct.pack("<%dh" % m, *([-32768] * m))), {0, 1}, None)
    v["crafted wrong magic"] = (bnn_v1(magic=b"\x89BNM\r\n\x1a\n"), 1, "magic")
    v["fp32 model"] = (open(os.path.join(WEIGHTS, "mnist-512-fp32.f32"), "rb").read(), 1, "FP32")
    v["npz given as model"] = (open(os.path.join(WEIGHTS, "seed", "bnn_weights_1bit.npz"), "rb").read()[:4096], 1, None)
    v["json given as model"] = (open(os.path.join(WEIGHTS, "mnist-512.json"), "rb").read(), 1, None)
    v["empty file"] = (b"", 1, None)
    v["magic only"] = (BNN_MAGIC, 1, "truncated")
    cnn = open(os.path.join(WEIGHTS, "mnist-cnn-small.bnn"), "rb").read()
    for off in [10, 11, 12, 16, 20, 24, 28, 32, 36, 37, 38, 39, 40, 44, 45, 46]:
        b = bytearray(cnn)
        b[off] ^= 0x01
        body = bytes(b[:-4])
        v["cnn byte %d flipped, crc fixed" % off] = (body + struct.pack("<I", zlib.crc32(body) & 0xFFFFFFFF), {0, 1}, None)
    # A per-class score scale (section SCAL) on the 10-class CNN: valid,
    # then each value or count the reader must refuse, naming the section.
    ok = [0.5, 0.0, 1.0, 2.0, 0.25, 3.0, 1.5, 0.75, 4.0, 1.25]
    v["cnn scal valid"] = (v3_with_section(cnn, b"SCAL", scal(ok)), 0, None)
    v["cnn scal nan"] = (v3_with_section(cnn, b"SCAL", scal([float("nan")] + ok[1:])), 1, "section SCAL")
    v["cnn scal inf"] = (v3_with_section(cnn, b"SCAL", scal(ok[:9] + [float("inf")])), 1, "section SCAL")
    v["cnn scal negative"] = (v3_with_section(cnn, b"SCAL", scal(ok[:4] + [-1.0] + ok[5:])), 1, "section SCAL")
    v["cnn scal 9 for 10 classes"] = (v3_with_section(cnn, b"SCAL", scal(ok[:9])), 1, "section SCAL")
    v["cnn scal count 2^32-1"] = (v3_with_section(cnn, b"SCAL", scal(ok, 2 ** 32 - 1)), 1, "section SCAL")
    v["cnn scal cut short"] = (v3_with_section(cnn, b"SCAL", scal(ok, 10)[:-3]), 1, "section SCAL")
    v["cnn scal not required"] = (v3_with_section(cnn, b"SCAL", scal(ok), flags=0), 1, "section SCAL")
    return v


def model_cases():
    variants = model_variants()
    for name, (data, code, needle) in variants.items():
        def s(d, data=data, code=code, needle=needle, name=name):
            p = W(d, "model.bnn", data)

            def check(res, ctx):
                out = res["stdout"]
                if any(ch in out for ch in "\x1b\r\x07\x7f\x9b\x00"):
                    return "control characters reached stdout: %r" % out[:200]
                return None
            return dict(args=["info", p], code=code, needles=[p] + ([needle] if needle else []), check=check)
        add("info", name, s)
    for name in ["seed byte 12 flipped", "seed cut at 41", "crafted 16-8-3", "crafted version 4", "crafted nan bias",
                 "fp32 model", "crafted desc with escapes", "empty file", "seed + 1 byte", "crafted input 2^24+1",
                 "cnn byte 16 flipped, crc fixed", "crafted threshold width 3"]:
        data, code, needle = variants[name]
        if name == "crafted 16-8-3" or name == "crafted desc with escapes":
            code, needle = 1, "does not fit"
        if name.startswith("cnn"):
            code = {0, 1}

        def s(d, data=data, code=code, needle=needle):
            p = W(d, "model.bnn", data)
            mn = mnist_test(d)
            return dict(args=["eval", p, "--data", mn, "--no-fetch"], code=code, needles=[p] + ([needle] if needle else []))
        add("eval", "model " + name, s)
    for name, make, needle in [("a directory", lambda d: (os.mkdir(os.path.join(d, "md")), os.path.join(d, "md"))[1], "directory"),
                               ("a null device", lambda d: mknod(d, "null", 3), "null"),
                               ("a zero device", lambda d: mknod(d, "zero", 5), "zero"),
                               ("missing", lambda d: os.path.join(d, "none.bnn"), "No such file"),
                               ("a looping link", lambda d: (os.symlink("loop", os.path.join(d, "loop")), os.path.join(d, "loop"))[1], "loop")]:
        for cmd in ("info", "eval", "classify"):
            def s(d, make=make, cmd=cmd, needle=needle):
                p = make(d)
                extra = {"info": [], "eval": ["--data", mnist_test(d), "--no-fetch"],
                         "classify": [W(d, "x.idx", idx([10, 28, 28], IMG))]}[cmd]
                return FAIL(1, [cmd, p] + extra, p, needle)
            add(cmd if cmd != "classify" else "classify", "model is %s" % name, s)

    def s(d):
        f = fifo(d, "model.fifo")
        return OK(["info", f], feed={f: open(os.path.join(WEIGHTS, "seed.bnn"), "rb").read()})
    add("info", "model from a FIFO", s)

    def s(d):
        return OK(["info", "/dev/stdin"], stdin=open(os.path.join(WEIGHTS, "seed.bnn"), "rb").read())
    add("info", "model from stdin", s)

    def s(d):
        return FAIL(1, ["info", "/dev/stdin"], "/dev/stdin", stdin=b"\x89BNN\r\n\x1a\n" + b"\xff" * 100000)
    add("info", "garbage model from stdin", s)

    for mdl in ["seed.bnn", "mnist-512.bnn", "mnist-512-u8.bnn", "mnist-deep.bnn", "mnist-cnn.bnn", "seed-recipe.bnn"]:
        def s(d, mdl=mdl):
            m = model(d, mdl)
            return OK(["info", m])
        add("info", "shipped %s" % mdl, s)

    def s(d):
        m = model(d)
        return FAIL(1, ["info", m], "stdout is closed", wrap=">&-")
    add("info", "stdout closed", s)

    def s(d):
        m = model(d)
        f = mknod(d, "full", 7)
        return FAIL(1, ["info", m], "standard output", wrap='>"%s"' % f)
    add("info", "stdout full", s)

    def s(d):
        return FAIL(2, ["info"], "MODEL")
    add("info", "no model", s)

    def s(d):
        m = model(d)
        return FAIL(2, ["info", m, m], "unexpected")
    add("info", "two models", s)


def eval_cases():
    def s(d):
        m = model(d)
        mn = mnist_test(d)

        def check(res, ctx):
            return None if "accuracy   90.19 % (9019 / 10000)" in res["stdout"] else "accuracy line missing or wrong"
        return OK(["eval", m, "--data", mn, "--no-fetch"], check=check)
    add("eval", "seed on raw MNIST", s)

    def s(d):
        m = model(d)
        mn = mnist_test(d, gzipped=True)

        def check(res, ctx):
            return None if "accuracy   90.19 %" in res["stdout"] else "accuracy wrong from .gz files"
        return OK(["eval", m, "--data", mn, "--no-fetch"], check=check)
    add("eval", "seed on gzip MNIST", s)

    def s(d):
        m = model(d)
        mn = mnist_test(d, names={"t10k-images-idx3-ubyte": "t10k-images.idx3-ubyte", "t10k-labels-idx1-ubyte": "t10k-labels.idx1-ubyte"})

        def check(res, ctx):
            return None if "accuracy   90.19 %" in res["stdout"] else "accuracy wrong from dotted names"
        return OK(["eval", m, "--data", mn, "--no-fetch"], check=check)
    add("eval", "seed on dotted names", s)

    def s(d):
        m = model(d)
        target = mnist_test(d, sub="real")
        ln = os.path.join(d, "linked")
        os.symlink(target, ln)
        return OK(["eval", m, "--data", ln, "--no-fetch"])
    add("eval", "--data is a link to a dir", s)

    for rule in ["scores", "seed", "bogus", "SCORES", ""]:
        def s(d, rule=rule):
            m = model(d)
            mn = mnist_test(d)
            code = 0 if rule in ("scores", "seed") else 2
            want = {"scores": "94.39 %", "seed": "90.19 %"}.get(rule)

            def check(res, ctx):
                return None if want in res["stdout"] else "--rule %s gave the wrong accuracy" % rule
            return dict(args=["eval", m, "--data", mn, "--no-fetch", "--rule", rule], code=code, needles=["--rule"],
                        check=check)
        add("eval", "--rule %r" % rule, s)
    for k in ["scalar", "avx2", "avx512", "neon", ""]:
        def s(d, k=k):
            m = model(d)
            mn = mnist_test(d)
            code = 0 if k in KERNELS else 2
            return dict(args=["eval", m, "--data", mn, "--no-fetch", "--kernel", k], code=code, needles=["--kernel"],
                        check=lambda res, ctx: None if "90.19 %" in res["stdout"] else "wrong accuracy")
        add("eval", "--kernel %r" % k, s)

    def s(d):
        m = model(d)
        mn = mnist_test(d)
        return OK(["eval", m, "--data", mn, "--no-fetch", "--verify", "--threads", "2"])
    add("eval", "--verify", s)

    def s(d):
        m = model(d, "mnist-cnn-small.bnn")
        mn = mnist_test(d)
        return OK(["eval", m, "--data", mn, "--no-fetch"],
                  check=lambda res, ctx: None if "99.16 %" in res["stdout"] else "cnn accuracy wrong")
    add("eval", "cnn-small", s)
    # Odd --data directories.
    imgs = open(os.path.join(MNIST, "t10k-images-idx3-ubyte"), "rb").read()
    labs = open(os.path.join(MNIST, "t10k-labels-idx1-ubyte"), "rb").read()
    TI, TL = "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"
    odd = {
        "missing dir": (lambda p: None, 1, "MNIST not found"),
        "empty dir": (lambda p: os.mkdir(p), 1, "MNIST not found"),
        "only images": (lambda p: W(p, TI, imgs), 1, "t10k-labels"),
        "only labels": (lambda p: W(p, TL, labs), 1, "t10k-images"),
        "labels short by one": (lambda p: (W(p, TI, imgs), W(p, TL, idx([9999], labs[8:-1], typ=0x08)[:0] + labs[:4] + struct.pack(">I", 9999) + labs[8:-1])), 1, "9999"),
        "label value 10": (lambda p: (W(p, TI, imgs), W(p, TL, labs[:-1] + b"\x0a")), 1, TL),
        "labels truncated": (lambda p: (W(p, TI, imgs), W(p, TL, labs[:-1])), 1, TL),
        "labels trailing": (lambda p: (W(p, TI, imgs), W(p, TL, labs + b"\x00")), 1, TL),
        "labels wrong magic": (lambda p: (W(p, TI, imgs), W(p, TL, b"\x00\x00\x08\x03" + labs[4:])), 1, TL),
        "images truncated": (lambda p: (W(p, TI, imgs[:-1]), W(p, TL, labs)), 1, TI),
        "images trailing": (lambda p: (W(p, TI, imgs + b"\x00"), W(p, TL, labs)), 1, TI),
        "images 27x27": (lambda p: (W(p, TI, idx([10000, 27, 27], imgs[16:16 + 10000 * 729])), W(p, TL, labs)), 1, TI),
        "images claim 2^32-1": (lambda p: (W(p, TI, imgs[:4] + struct.pack(">I", 2 ** 32 - 1) + imgs[8:]), W(p, TL, labs)), 1, TI),
        "images are labels": (lambda p: (W(p, TI, labs), W(p, TL, labs)), 1, TI),
        "images gz corrupt": (lambda p: (W(p, TI + ".gz", gz(imgs)[:-10]), W(p, TL, labs)), 1, TI),
        "images gz of garbage": (lambda p: (W(p, TI + ".gz", b"\x1f\x8bgarbage"), W(p, TL, labs)), 1, TI),
        "images a directory": (lambda p: (os.makedirs(os.path.join(p, TI)), W(p, TL, labs)), 1, TI),
        "images a dangling link": (lambda p: (os.makedirs(p), os.symlink("nowhere", os.path.join(p, TI)), W(p, TL, labs)), 1, TI),
        "images a fifo": (lambda p: (os.makedirs(p), fifo(p, TI), W(p, TL, labs)), 1, TI),
        "images a null device": (lambda p: (os.makedirs(p), mknod(p, TI, 3), W(p, TL, labs)), 1, TI),
        "images empty": (lambda p: (W(p, TI, b""), W(p, TL, labs)), 1, TI),
        "200 images and labels": (lambda p: (W(p, TI, idx([200, 28, 28], imgs[16:16 + 200 * 784])), W(p, TL, idx([200], labs[8:208]))), 0, None),
        "no images at all": (lambda p: (W(p, TI, idx([0, 28, 28], b"")), W(p, TL, idx([0], b""))), {0, 1}, None),
        "raw and gz disagree": (lambda p: (W(p, TI, imgs), W(p, TL, labs), W(p, TI + ".gz", b"junk")), 0, None),
    }
    for name, (make, code, needle) in odd.items():
        def s(d, make=make, code=code, needle=needle, name=name):
            m = model(d)
            p = os.path.join(d, "data")
            make(p)

            def check(res, ctx):
                if name == "200 images and labels" and "(" not in res["stdout"]:
                    return "no accuracy"
                if name == "200 images and labels" and "/ 200)" not in res["stdout"]:
                    return "accuracy not over 200 images"
                return None
            return dict(args=["eval", m, "--data", p, "--no-fetch"], code=code, needles=[p] + ([needle] if needle else []),
                        check=check)
        add("eval", "--data %s" % name, s)

    def s(d):
        m = model(d)
        p = W(d, "afile", b"x")
        # A file is the user's data: here a CSV of one header cell.
        return FAIL(1, ["eval", m, "--data", p, "--no-fetch"], p, "line 1")
    add("eval", "--data is a file", s)

    def s(d):
        m = model(d)
        p = W(d, "afile", b"x")
        return FAIL(1, ["eval", m, "--data", os.path.join(p, "sub"), "--no-fetch"], p, "not a directory")
    add("eval", "--data under a file", s)

    def s(d):
        m = model(d)
        p = os.path.join(d, "nodata")
        return FAIL(1, ["eval", m, "--data", p], "npm", leave_ok=[p], npm_ok=True, notes_ok=True)
    add("eval", "--data missing, fetch fails (no network)", s)

    def s(d):
        m = model(d)
        p = W(d, "afile", b"x")
        return FAIL(1, ["eval", m, "--data", p], p, "line 1")
    add("eval", "--data is a file, would fetch", s)

    def s(d):
        m = model(d)
        mn = mnist_test(d)
        return FAIL(1, ["eval", m, "--data", mn, "--no-fetch"], "stdout is closed", wrap=">&-")
    add("eval", "stdout closed", s)

    def s(d):
        m = model(d)
        mn = mnist_test(d)
        f = mknod(d, "full", 7)
        return FAIL(1, ["eval", m, "--data", mn, "--no-fetch"], "standard output", wrap='>"%s"' % f)
    add("eval", "stdout full", s)
    for t in ["0", "1", "2", "abc", "1025"]:
        def s(d, t=t):
            m = model(d)
            mn = mnist_test(d)
            code = 0 if t in ("1", "2") else 2
            return dict(args=["eval", m, "--data", mn, "--no-fetch", "--threads", t], code=code, needles=["--threads"])
        add("eval", "--threads %s" % t, s)
    for env in [{"BNN_KERNEL": "bogus"}, {"BNN_LAYER": "sparse"}, {"BNN_LAYER": "x"}, {"RAYON_NUM_THREADS": "0"}]:
        def s(d, env=env):
            m = model(d)
            mn = mnist_test(d)
            bad = list(env.values())[0] in ("bogus", "x", "0")
            return dict(args=["eval", m, "--data", mn, "--no-fetch"], env=env, code=2 if bad else 0,
                        needles=[list(env)[0]])
        add("eval", "env %r" % env, s)


def kernels_cases():
    for env, code in [({}, 0), ({"BNN_KERNEL": "scalar"}, 0), ({"BNN_KERNEL": "bogus"}, 2), ({"BNN_KERNEL": ""}, {0, 2}),
                      ({"BNN_LAYER": "dense"}, 0), ({"BNN_LAYER": "sparse"}, 0), ({"BNN_LAYER": "bogus"}, 2),
                      ({"BNN_FEATURES_OFF": "vnni"}, 0), ({"BNN_FEATURES_OFF": "vnni,vbmi2,bmi"}, 0),
                      ({"BNN_FEATURES_OFF": "bogus"}, {0, 2}), ({"BNN_FEATURES_OFF": ""}, 0),
                      ({"RAYON_NUM_THREADS": "0"}, 2), ({"RAYON_NUM_THREADS": "abc"}, 2), ({"RAYON_NUM_THREADS": "3"}, 0),
                      ({"BNN_KERNEL": "avx512"}, 0 if "avx512" in KERNELS else 2),
                      ({"BNN_KERNEL": "avx2"}, 0 if "avx2" in KERNELS else 2),
                      ({"BNN_KERNEL": "\x1b[31m"}, 2)]:
        def s(d, env=env, code=code):
            def check(res, ctx):
                out = res["stdout"]
                if "scalar" not in out or "layers" not in out:
                    return "kernels output incomplete"
                if env.get("BNN_KERNEL") in ("scalar", "avx2", "avx512"):
                    line = [l for l in out.splitlines() if l.startswith(env["BNN_KERNEL"] + " ")]
                    if not line or "(default)" not in line[0]:
                        return "forced kernel not shown as the default"
                if env.get("BNN_LAYER") in ("dense", "sparse") and "layers   %s" % env["BNN_LAYER"] not in out:
                    return "forced layer mode not shown"
                if env.get("BNN_FEATURES_OFF") == "vnni" and "vnni on" in out:
                    return "vnni shown on while hidden"
                return None
            return dict(args=["kernels"], env=env, code=code, needles=list(env)[:1], check=check)
        add("kernels", "env %r" % env, s)

    def s(d):
        return FAIL(1, ["kernels"], "stdout is closed", wrap=">&-")
    add("kernels", "stdout closed", s)

    def s(d):
        f = mknod(d, "full", 7)
        return FAIL(1, ["kernels"], "standard output", wrap='>"%s"' % f)
    add("kernels", "stdout full", s)

    def s(d):
        return FAIL(2, ["kernels", "extra"], "extra")
    add("kernels", "extra argument", s)

    def s(d):
        return OK(["kernels"], wrap="| head -c 10 >/dev/null", stdout_any=True)
    add("kernels", "reader leaves", s)


# ============================================================== import-npz

def npz_cases():
    F = "import-npz"
    seed_npz = open(os.path.join(WEIGHTS, "seed", "bnn_weights_1bit.npz"), "rb").read()
    seed_bnn = open(os.path.join(WEIGHTS, "seed.bnn"), "rb").read()

    def s(d):
        p = W(d, "bnn_weights_1bit.npz", seed_npz)
        o = os.path.join(d, "seed.bnn")

        def check(res, ctx):
            return None if open(o, "rb").read() == seed_bnn else "import differs from weights/seed.bnn"
        return OK(["import-npz", p, "-o", o], outputs=[o], check=check)
    add(F, "seed npz reproduces weights/seed.bnn", s)

    def tiny_check(o, ref_members=None):
        def check(res, ctx):
            out = ctx.run(["info", o])
            if "6-5-3" not in out:
                return "info of the import: %r" % out[:120]
            if ref_members is not None:
                r = os.path.join(ctx.d, "ref.npz")
                ro = os.path.join(tempfile.mkdtemp(prefix="bnn-ref-"), "ref.bnn")
                with open(r, "wb") as f:
                    f.write(npz(ref_members))
                ctx.run(["import-npz", r, "-o", ro])
                a, b = open(o, "rb").read(), open(ro, "rb").read()
                os.remove(r)
                shutil.rmtree(os.path.dirname(ro))
                # The description names the file and its size: compare the rest.
                if a[24 + 16:24 + 16 + 0] != b"" or a[:12] != b[:12] or a[-200:-4].split(b"output biases as f32")[-1] != b[-200:-4].split(b"output biases as f32")[-1]:
                    return "import differs from the plain C-order import"
            return None
        return check

    def s(d):
        p = W(d, "t.npz", npz(tiny_npz_members()))
        o = os.path.join(d, "t.bnn")
        return OK(["import-npz", p, "-o", o], outputs=[o], check=tiny_check(o))
    add(F, "tiny valid", s)

    def s(d):
        p = W(d, "t.npz", npz(tiny_npz_members(), zipfile.ZIP_DEFLATED))
        o = os.path.join(d, "t.bnn")
        return OK(["import-npz", p, "-o", o], outputs=[o], check=tiny_check(o))
    add(F, "tiny deflated", s)
    for comp in (zipfile.ZIP_BZIP2, zipfile.ZIP_LZMA):
        def s(d, comp=comp):
            p = W(d, "t.npz", npz(tiny_npz_members(), comp))
            o = os.path.join(d, "t.bnn")
            return dict(args=["import-npz", p, "-o", o], code={0, 1}, needles=[p], outputs=[o], check=tiny_check(o))
        add(F, "tiny compressed with method %d" % comp, s)
    ws = signs(30, 1)
    fortran_vals = [ws[r * 6 + c] for c in range(6) for r in range(5)]
    members = {
        "weights int8": ({"fc1_w.npy": npy((5, 6), struct.pack("<30b", *ws), descr="'|i1'")}, 0),
        "weights float32": ({"fc1_w.npy": npy((5, 6), struct.pack("<30f", *ws), descr="'<f4'")}, 0),
        "weights big-endian i8": ({"fc1_w.npy": npy((5, 6), struct.pack(">30q", *ws), descr="'>i8'")}, 0),
        "weights bool": ({"fc1_w.npy": npy((5, 6), bytes(1 if w > 0 else 0 for w in ws), descr="'|b1'")}, 0),
        "weights fortran order": ({"fc1_w.npy": npy((5, 6), struct.pack("<30q", *fortran_vals), descr="'<i8'", fortran="True")}, 0),
        "weights uint8 255": ({"fc1_w.npy": npy((5, 6), bytes(255 if w < 0 else 1 for w in ws), descr="'|u1'")}, 1),
        "weights 0": ({"fc1_w.npy": npy_i8((5, 6), [0] + ws[1:])}, 1),
        "weights 2": ({"fc1_w.npy": npy_i8((5, 6), [2] + ws[1:])}, 1),
        "weights nan": ({"fc1_w.npy": npy((5, 6), struct.pack("<30d", float("nan"), *ws[1:]), descr="'<f8'")}, 1),
        "weights -0.0 and 1.0000001": ({"fc1_w.npy": npy((5, 6), struct.pack("<30d", 1.0000001, *ws[1:]), descr="'<f8'")}, 1),
        "weights complex": ({"fc1_w.npy": npy((5, 6), bytes(30 * 16), descr="'<c16'")}, 1),
        "weights object": ({"fc1_w.npy": npy((5, 6), b"\x80\x02N.", descr="'|O'")}, 1),
        "weights str": ({"fc1_w.npy": npy((5, 6), b"1" * 30, descr="'|S1'")}, 1),
        "weights f2": ({"fc1_w.npy": npy((5, 6), bytes(60), descr="'<f2'")}, 1),
        "weights 3-d": ({"fc1_w.npy": npy_i8((5, 6, 1), ws)}, 1),
        "weights 1-d": ({"fc1_w.npy": npy_i8((30,), ws)}, 1),
        "weights 0-d": ({"fc1_w.npy": npy_i8((), [1])}, 1),
        "weights (0, 6)": ({"fc1_w.npy": npy_i8((0, 6), [])}, 1),
        "weights huge shape": ({"fc1_w.npy": npy((2 ** 31, 2 ** 31), b"", descr="'<i8'")}, 1),
        "weights shape overflow": ({"fc1_w.npy": npy((2 ** 63, 2 ** 63), b"", descr="'<i8'")}, 1),
        "weights truncated": ({"fc1_w.npy": npy_i8((5, 6), ws)[:-1]}, 1),
        "weights trailing": ({"fc1_w.npy": npy_i8((5, 6), ws) + b"\x00" * 8}, 1),
        "weights deep nesting": ({"fc1_w.npy": npy(header="{'descr': '<i8', 'fortran_order': False, 'shape': " + "(" * 5000 + ")" * 5000 + "}")}, 1),
        "weights not npy": ({"fc1_w.npy": b"hello"}, 1),
        "bias nan": ({"fc1_b.npy": npy_f8((1, 5), [0, float("nan"), 0, 0, 0])}, 1),
        "bias inf": ({"fc2_b.npy": npy_f8((1, 3), [0, float("inf"), 0])}, 1),
        "bias -inf hidden": ({"fc1_b.npy": npy_f8((1, 5), [0, float("-inf"), 0, 0, 0])}, 1),
        "bias 1e300 output": ({"fc2_b.npy": npy_f8((1, 3), [0, 1e300, 0])}, 1),
        # A hidden bias past the dot's range makes the neuron constant: exact as a clamped threshold.
        "bias 1e300 hidden": ({"fc1_b.npy": npy_f8((1, 5), [0, 1e300, 0, 0, 0])}, 0),
        "bias shape (5,)": ({"fc1_b.npy": npy_f8((5,), [0.5, -1.5, 0.0, 2.0, -0.25])}, 0),
        "bias shape (5, 1)": ({"fc1_b.npy": npy_f8((5, 1), [0.5, -1.5, 0.0, 2.0, -0.25])}, 1),
        "bias shape (4,)": ({"fc1_b.npy": npy_f8((4,), [0.5, -1.5, 0.0, 2.0])}, 1),
        "bias bool": ({"fc1_b.npy": npy((5,), bytes(5), descr="'|b1'")}, 1),
        "bias int64": ({"fc1_b.npy": npy_i8((1, 5), [1, -2, 0, 2, 0])}, 0),
        "bias float16": ({"fc1_b.npy": npy((1, 5), bytes(10), descr="'<f2'")}, 1),
        "shapes do not chain": ({"fc2_w.npy": npy_i8((3, 4), signs(12, 2))}, 1),
        "fc1_b missing": ({"fc1_b.npy": None}, 1),
        "fc2 missing but fc3 present": ({"fc2_w.npy": None, "fc2_b.npy": None, "fc3_w.npy": npy_i8((3, 5), signs(15, 3)),
                                          "fc3_b.npy": npy_f8((3,), [0, 0, 0])}, 1),
        "fc1_w missing": ({"fc1_w.npy": None}, 1),
        "extra arrays": ({"other.npy": npy_i8((2,), [1, 2]), "fc2_extra.npy": b"junk"}, 0),
        "member without .npy": ({"fc1_w": npy_i8((5, 6), ws)}, {0, 1}),
        "member in a folder": ({"fc1_w.npy": None, "dir/fc1_w.npy": npy_i8((5, 6), ws)}, 1),
        "fc10_w gap": ({"fc10_w.npy": npy_i8((3, 3), signs(9, 4)), "fc10_b.npy": npy_f8((3,), [0, 0, 0])}, 1),
        "fc01_w name": ({"fc01_w.npy": npy_i8((3, 3), signs(9, 4))}, {0, 1}),
        "10000-neuron layer": ({"fc1_w.npy": npy((10000, 6), bytes(60000), descr="'|b1'"),
                                "fc1_b.npy": npy((10000,), bytes(80000), descr="'<f8'"),
                                "fc2_w.npy": npy((3, 10000), bytes(30000), descr="'|b1'")}, 0),
    }
    for name, (over, code) in members.items():
        def s(d, over=over, code=code, name=name):
            p = W(d, "t.npz", npz(tiny_npz_members(**over)))
            o = os.path.join(d, "t.bnn")
            check = None
            if code == 0 and name not in ("10000-neuron layer", "bias 1e300 hidden"):
                ref = tiny_npz_members()
                if name.startswith("bias"):
                    ref = tiny_npz_members(**over)
                check = tiny_check(o, ref)
            return dict(args=["import-npz", p, "-o", o], code=code, needles=[p], outputs=[o], check=check)
        add(F, "member %s" % name, s)

    def s(d):
        members = tiny_npz_members()
        other = npy_i8((5, 6), [-w for w in ws])
        members.append(("fc1_w.npy", other))
        p = W(d, "dup.npz", npz(members))
        o = os.path.join(d, "t.bnn")
        # NumPy (zipfile) reads the last of two members of one name: so may bnn, or it may refuse.
        return dict(args=["import-npz", p, "-o", o], code={0, 1}, needles=[p, "fc1_w"], outputs=[o],
                    check=tiny_check(o, tiny_npz_members(**{"fc1_w.npy": other})))
    add(F, "duplicate member with other values", s)

    def s(d):
        members = tiny_npz_members()
        members.append(("fc1_w.npy", dict(members)["fc1_w.npy"]))
        p = W(d, "dup.npz", npz(members))
        o = os.path.join(d, "t.bnn")
        return dict(args=["import-npz", p, "-o", o], code={0, 1}, needles=[p], outputs=[o])
    add(F, "duplicate member with the same values", s)

    def s(d):
        # A member that inflates to 256 MiB of zeros after a valid array.
        co = zlib.compressobj(9, zlib.DEFLATED, -15)
        payload = npy_i8((5, 6), ws)
        body = co.compress(payload)
        for _ in range(256):
            body += co.compress(bytes(1 << 20))
        body += co.flush()
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w") as z:
            for k, v in tiny_npz_members():
                if k != "fc1_w.npy":
                    z.writestr(k, v)
        zdata = buf.getvalue()
        # Append the bomb member by hand (local header, data, central directory).
        name = b"fc1_w.npy"
        crc = zlib.crc32(payload + bytes(256 << 20)) & 0xFFFFFFFF
        size = len(payload) + (256 << 20)
        zi = zipfile.ZipFile(io.BytesIO(zdata))
        entries = zi.infolist()
        central_start = zi.start_dir
        local = struct.pack("<IHHHHHIIIHH", 0x04034B50, 20, 0, 8, 0, 0, crc, len(body), size, len(name), 0) + name
        out = zdata[:central_start]
        off_bomb = len(out)
        out += local + body
        cd_start = len(out)
        cd = zdata[central_start:zdata.rfind(b"PK\x05\x06")]
        cd += struct.pack("<IHHHHHHIIIHHHHHII", 0x02014B50, 20, 20, 0, 8, 0, 0, crc, len(body), size, len(name), 0, 0, 0, 0, 0, off_bomb) + name
        out += cd + struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, len(entries) + 1, len(entries) + 1, len(cd), cd_start, 0)
        p = W(d, "bomb.npz", out)
        o = os.path.join(d, "t.bnn")
        return FAIL(1, ["import-npz", p, "-o", o], p)
    add(F, "zip bomb member", s)

    def s(d):
        # A stored member whose header claims far more bytes than the archive holds.
        data = npz(tiny_npz_members())
        i = data.find(b"PK\x01\x02")
        b = bytearray(data)
        struct.pack_into("<II", b, i + 20, 0x7FFFFFFF, 0x7FFFFFFF)
        p = W(d, "lie.npz", bytes(b))
        o = os.path.join(d, "t.bnn")
        return FAIL(1, ["import-npz", p, "-o", o], p)
    add(F, "member sizes lie", s)

    def s(d):
        data = bytearray(npz(tiny_npz_members()))
        i = data.find(b"PK\x03\x04")
        data[i + 6] |= 1  # encrypted flag
        j = data.find(b"PK\x01\x02")
        data[j + 8] |= 1
        p = W(d, "enc.npz", bytes(data))
        o = os.path.join(d, "t.bnn")
        return FAIL(1, ["import-npz", p, "-o", o], p)
    add(F, "encrypted member", s)
    whole = npz(tiny_npz_members())
    for cut in [0, 1, 4, 30, len(whole) // 2, len(whole) - 22, len(whole) - 1]:
        def s(d, cut=cut):
            p = W(d, "cut.npz", whole[:cut])
            o = os.path.join(d, "t.bnn")
            return FAIL(1, ["import-npz", p, "-o", o], p)
        add(F, "archive truncated at %d" % cut, s)

    def s(d):
        p = W(d, "tail.npz", whole + b"trailing")
        o = os.path.join(d, "t.bnn")
        return dict(args=["import-npz", p, "-o", o], code={0, 1}, needles=[p], outputs=[o])
    add(F, "archive with trailing bytes", s)

    def s(d):
        p = W(d, "g.npz", gz(whole))
        o = os.path.join(d, "t.bnn")
        return FAIL(1, ["import-npz", p, "-o", o], p)
    add(F, "gzip instead of zip", s)

    def s(d):
        p = W(d, "one.npy", npy_i8((5, 6), ws))
        o = os.path.join(d, "t.bnn")
        return FAIL(1, ["import-npz", p, "-o", o], p)
    add(F, "a .npy instead of a .npz", s)

    def s(d):
        o = os.path.join(d, "t.bnn")
        return OK(["import-npz", "/dev/stdin", "-o", o], stdin=whole, outputs=[o], check=tiny_check(o))
    add(F, "npz from stdin", s)

    def s(d):
        f = fifo(d, "in.fifo")
        o = os.path.join(d, "t.bnn")
        return OK(["import-npz", f, "-o", o], feed={f: whole}, outputs=[o], check=tiny_check(o))
    add(F, "npz from a FIFO", s)

    def s(d):
        o = os.path.join(d, "t.bnn")
        return FAIL(1, ["import-npz", "/dev/stdin", "-o", o], "/dev/stdin", stdin=whole[:-5])
    add(F, "truncated npz from stdin", s)

    def s(d):
        z = mknod(d, "zero", 5)
        o = os.path.join(d, "t.bnn")
        return FAIL(1, ["import-npz", z, "-o", o], z)
    add(F, "npz is a zero device", s)

    def s(d):
        q = os.path.join(d, "dir.npz")
        os.mkdir(q)
        o = os.path.join(d, "t.bnn")
        return FAIL(1, ["import-npz", q, "-o", o], q)
    add(F, "npz is a directory", s)

    def s(d):
        o = os.path.join(d, "t.bnn")
        return FAIL(1, ["import-npz", os.path.join(d, "none.npz"), "-o", o], "none.npz")
    add(F, "npz missing", s)
    for rule, code in [("seed", 0), ("scores", 0), ("bogus", 2), ("", 2)]:
        def s(d, rule=rule, code=code):
            p = W(d, "t.npz", whole)
            o = os.path.join(d, "t.bnn")

            def check(res, ctx):
                return None if "decision rule   %s" % rule in ctx.run(["info", o]) else "rule not stored"
            return dict(args=["import-npz", p, "-o", o, "--rule", rule], code=code, needles=["--rule"], outputs=[o],
                        check=check)
        add(F, "--rule %r" % rule, s)
    out_path_cases(F, lambda d: [W(d, "t.npz", whole)], lambda d, args, o: ["import-npz"] + args + ["-o", o],
                   lambda o: tiny_check(o))


def out_path_cases(F, inputs, argv, check_of):
    """-o rules for a command writing one file."""
    def s(d):
        ins = inputs(d)
        o = W(d, "out.bnn", b"old", mode=0o640)
        os.chown(o, 1234, 5678)
        return OK(argv(d, ins, o), outputs=[o], check=check_of(o))
    add(F, "-o existing file 640 owned by 1234", s)

    def s(d):
        ins = inputs(d)
        t = W(d, "target.bnn", b"old", mode=0o600)
        o = os.path.join(d, "link.bnn")
        os.symlink("target.bnn", o)
        return OK(argv(d, ins, o), outputs=[t], check=check_of(t))
    add(F, "-o link to a file", s)

    def s(d):
        ins = inputs(d)
        o = os.path.join(d, "link.bnn")
        os.symlink("made.bnn", o)
        t = os.path.join(d, "made.bnn")
        return OK(argv(d, ins, o), outputs=[t], check=check_of(t))
    add(F, "-o dangling link", s)
    for rel, needle in [("sub", "is a directory"), ("missing/o.bnn", "does not exist"), ("notes.txt/o.bnn", "not a directory")]:
        def s(d, rel=rel, needle=needle):
            ins = inputs(d)
            os.mkdir(os.path.join(d, "sub"))
            W(d, "notes.txt", b"keep")
            return FAIL(2, argv(d, ins, os.path.join(d, rel)), needle)
        add(F, "-o %s" % rel, s)

    def s(d):
        ins = inputs(d)
        os.mkdir(os.path.join(d, "sub"))
        o = os.path.join(d, "l")
        os.symlink("sub", o)
        return FAIL(2, argv(d, ins, o), o, "directory")
    add(F, "-o link to a directory", s)

    def s(d):
        ins = inputs(d)
        return FAIL(2, argv(d, ins, ins[0]), ins[0], "same file as the input")
    add(F, "-o the input", s)

    def s(d):
        ins = inputs(d)
        h = os.path.join(d, "hard")
        os.link(ins[0], h)
        return FAIL(2, argv(d, ins, h), h, "same file as the input")
    add(F, "-o a hard link of the input", s)

    def s(d):
        ins = inputs(d)
        h = os.path.join(d, "soft")
        os.symlink(ins[0], h)
        return FAIL(2, argv(d, ins, h), h, "same file as the input")
    add(F, "-o a symlink to the input", s)

    def s(d):
        ins = inputs(d)
        W(d, "notes.txt", b"keep")
        o = os.path.join(d, "notes.txt", "a", "b.bnn")
        return FAIL(2, argv(d, ins, o), os.path.join(d, "notes.txt") + " is not a directory")
    add(F, "-o two levels below a file", s)

    def s(d):
        ins = inputs(d)
        o = os.path.join(d, "z" * 300)
        return FAIL(1, argv(d, ins, o), "File name too long")
    add(F, "-o 300-byte name", s)

    def s(d):
        ins = inputs(d)
        f = mknod(d, "full", 7)
        return FAIL(1, argv(d, ins, f), f, "No space left")
    add(F, "-o full device", s)

    def s(d):
        ins = inputs(d)
        n = mknod(d, "null", 3)
        return OK(argv(d, ins, n))
    add(F, "-o null device", s)

    def s(d):
        ins = inputs(d)
        f = fifo(d, "o.fifo")
        return OK(argv(d, ins, f), drain=[f])
    add(F, "-o fifo with a reader", s)

    def s(d):
        ins = inputs(d)
        return OK(argv(d, ins, "/dev/stdout"), stdout_any=True)
    add(F, "-o /dev/stdout", s)

    def s(d):
        ins = inputs(d)
        return FAIL(1, argv(d, ins, "/dev/stdout"), "stdout", wrap=">&-")
    add(F, "-o /dev/stdout with stdout closed", s)

    def s(d):
        ins = inputs(d)
        return FAIL(2, argv(d, ins, "/dev/fd/9"), "/dev/fd/9", "not an open file descriptor")
    add(F, "-o closed /dev/fd/9", s)

    def s(d):
        ins = inputs(d)
        notes = W(d, "notes.txt", b"keep")
        return FAIL(2, argv(d, ins, "/dev/fd/3"), "/dev/fd/3", "reading only", wrap='3<"%s"' % notes)
    add(F, "-o /dev/fd/3 open for reading", s)

    def s(d):
        ins = inputs(d)
        o = os.path.join(d, "o.bnn")
        return OK(argv(d, ins, o), wrap=">&-", outputs=[o], check=check_of(o), stdout_any=True)
    add(F, "stdout closed, -o file", s)

    def s(d):
        ins = inputs(d)
        o = os.path.join(d, "o.bnn")
        f = mknod(d, "full", 7)
        return OK(argv(d, ins, o), wrap='>"%s"' % f, outputs=[o], check=check_of(o), stderr_any=True)
    add(F, "stdout full, -o file", s)

    def s(d):
        ins = inputs(d)
        q = os.path.join(d, "ro")
        os.mkdir(q)
        os.chmod(q, 0o555)
        for i in ins:
            os.chmod(i, 0o644)
        return FAIL(1, argv(d, ins, os.path.join(q, "o.bnn")), os.path.join(q, "o.bnn"), "ermission", nobody=True)
    add(F, "-o in an unwritable dir (as nobody)", s)

    def s(d):
        ins = inputs(d)
        o = os.path.join(d, "o.bnn")
        return FAIL(1, argv(d, ins, o), o, "File too large", ulimit_f=10)
    add(F, "-o past ulimit -f", s)

    def s(d):
        ins = inputs(d)
        return FAIL(2, argv(d, ins, ""), "")
    add(F, "-o empty string", s)


# ================================================================== fetch

def fetch_cases():
    F = "fetch"

    def s(d):
        p = mnist_all(d)
        return OK(["fetch", "--dir", p], stderr_any=True)
    add(F, "already present", s)

    def s(d):
        p = mnist_all(d, "real")
        ln = os.path.join(d, "link")
        os.symlink(p, ln)
        return OK(["fetch", "--dir", ln], stderr_any=True)
    add(F, "already present through a link", s)

    def s(d):
        p = mnist_all(d)
        for name in os.listdir(p):
            os.chmod(os.path.join(p, name), 0o444)
        os.chmod(p, 0o555)
        return OK(["fetch", "--dir", p], stderr_any=True, nobody=True)
    add(F, "already present, read-only (as nobody)", s)

    def s(d):
        p = mnist_all(d)
        W(p, "extra.txt", b"keep")
        return OK(["fetch", "--dir", p + "/"], stderr_any=True)
    add(F, "already present, trailing slash, extra file", s)

    def s(d):
        p = W(d, "afile", b"keep")
        return FAIL(1, ["fetch", "--dir", p], p, "in the way")
    add(F, "--dir onto a file", s)

    def s(d):
        p = W(d, "afile", b"keep")
        return FAIL(1, ["fetch", "--dir", os.path.join(p, "sub", "deeper")], p, "in the way")
    add(F, "--dir under a file", s)

    def s(d):
        t = W(d, "afile", b"keep")
        ln = os.path.join(d, "ln")
        os.symlink("afile", ln)
        return FAIL(1, ["fetch", "--dir", ln], ln, "in the way")
    add(F, "--dir a link to a file", s)

    def s(d):
        n = mknod(d, "null", 3)
        return FAIL(1, ["fetch", "--dir", n], n, "in the way")
    add(F, "--dir a device", s)

    def s(d):
        f = fifo(d, "ff")
        return FAIL(1, ["fetch", "--dir", f], f, "in the way")
    add(F, "--dir a FIFO", s)

    def s(d):
        ln = os.path.join(d, "loop")
        os.symlink("loop", ln)
        return FAIL(1, ["fetch", "--dir", ln], ln)
    add(F, "--dir a looping link", s)

    def s(d):
        q = os.path.join(d, "ro")
        os.mkdir(q)
        os.chmod(q, 0o555)
        return FAIL(1, ["fetch", "--dir", os.path.join(q, "mnist")], os.path.join(q, "mnist"), "ermission", nobody=True)
    add(F, "--dir in an unwritable dir (as nobody)", s)

    def s(d):
        q = os.path.join(d, "ro")
        os.mkdir(q)
        os.chmod(q, 0o555)
        return FAIL(1, ["fetch", "--dir", q], q, "ermission", nobody=True)
    add(F, "--dir unwritable and empty (as nobody)", s)

    def s(d):
        return FAIL(2, ["fetch", "--dir"], "--dir")
    add(F, "--dir without a value", s)

    def s(d):
        p = mnist_all(d, "real")
        q = os.path.join(d, "linked")
        os.mkdir(q)
        for name in os.listdir(p):
            os.symlink(os.path.join(p, name), os.path.join(q, name))
        return OK(["fetch", "--dir", q], stderr_any=True)
    add(F, "already present as links to the files", s)

    def s(d):
        return FAIL(2, ["fetch", "--dir", ""], "--dir")
    add(F, "--dir empty string", s)

    def s(d):
        return FAIL(2, ["fetch", "--bogus"], "--bogus")
    add(F, "unknown flag", s)

    def s(d):
        p = mnist_all(d)
        return OK(["fetch", "--dir", p], wrap=">&- 2>&-", stderr_any=True, stdout_any=True)
    add(F, "already present, stdout and stderr closed", s)

    def s(d):
        p = mnist_all(d)
        f = mknod(d, "full", 7)
        return OK(["fetch", "--dir", p], wrap='2>"%s"' % f, stderr_any=True)
    add(F, "already present, stderr full", s)


# =============================================================== the runner


def snapshot(d):
    snap = {}
    for top, dirs, files in os.walk(d, followlinks=False):
        for name in dirs + files:
            p = os.path.join(top, name)
            rel = os.path.relpath(p, d)
            st = os.lstat(p)
            kind = stat.S_IFMT(st.st_mode)
            info = [kind, stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid]
            if stat.S_ISREG(kind):
                h = hashlib.sha1()
                with open(p, "rb") as f:
                    for block in iter(lambda: f.read(1 << 20), b""):
                        h.update(block)
                info.append(h.hexdigest())
            elif stat.S_ISLNK(kind):
                info.append(os.readlink(p))
            elif stat.S_ISCHR(kind) or stat.S_ISBLK(kind):
                info.append(st.st_rdev)
            snap[rel] = tuple(info)
        # Do not descend through links (os.walk does not) nor into dirs we cannot read.
    return snap


def describe(info):
    if info is None:
        return "absent"
    kind = {stat.S_IFREG: "file", stat.S_IFDIR: "dir", stat.S_IFLNK: "link", stat.S_IFIFO: "fifo",
            stat.S_IFCHR: "chardev"}.get(info[0], "other")
    return "%s mode %o uid %d" % (kind, info[1], info[2])


def feeder(path, data):
    try:
        with open(path, "wb") as f:
            f.write(data)
    except OSError:
        pass


def run_case(bnn, family, name, setup, base_env, verbose):
    d = tempfile.mkdtemp(prefix="bnn-hostile-")
    os.chmod(d, 0o755)
    problems = []
    res = {}
    spec = None
    try:
        try:
            spec = setup(d)
        except Exception as e:  # a setup that cannot run is a failed case, never a skip
            return ["setup failed: %r" % e], res, []
        if spec.get("pre"):
            spec["pre"]()
        env = dict(base_env)
        env.update(spec.get("env", {}))
        before = snapshot(d)
        args = [str(a) for a in spec["args"]]
        cmd = [bnn] + args
        wrap = spec.get("wrap")
        nobody = spec.get("nobody")
        ulimit_f = spec.get("ulimit_f")
        if wrap:
            cmd = ["bash", "-c", 'exec "$0" "$@" ' + wrap, bnn] + args
            if "| head" in wrap:
                cmd = ["bash", "-c", '"$0" "$@" ' + wrap, bnn] + args
        if nobody:
            cmd = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"] + cmd

        def limits():
            resource.setrlimit(resource.RLIMIT_AS, (MEM_LIMIT, MEM_LIMIT))
            if ulimit_f:
                resource.setrlimit(resource.RLIMIT_FSIZE, (ulimit_f, ulimit_f))

        threads = []
        for path, data in spec.get("feed", {}).items():
            t = threading.Thread(target=feeder, args=(path, data), daemon=True)
            t.start()
            threads.append((t, path))
        drains = {}
        drain_fds = {}
        for path in spec.get("drain", []):
            drain_fds[path] = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
            drains[path] = b""
        start = time.time()
        proc = subprocess.Popen(cmd, cwd=d, env=env, stdin=subprocess.PIPE if spec.get("stdin") is not None else subprocess.DEVNULL,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, preexec_fn=limits)
        out_chunks, err_chunks = [], []

        def pump(stream, sink):
            for block in iter(lambda: stream.read(65536), b""):
                sink.append(block)

        tout = threading.Thread(target=pump, args=(proc.stdout, out_chunks), daemon=True)
        terr = threading.Thread(target=pump, args=(proc.stderr, err_chunks), daemon=True)
        tout.start()
        terr.start()
        if spec.get("stdin") is not None:
            def give():
                try:
                    proc.stdin.write(spec["stdin"])
                    proc.stdin.close()
                except OSError:
                    pass
            threading.Thread(target=give, daemon=True).start()
        timed_out = False
        while proc.poll() is None:
            for path, fd in drain_fds.items():
                try:
                    drains[path] += os.read(fd, 1 << 20)
                except BlockingIOError:
                    pass
            if time.time() - start > TIMEOUT:
                proc.kill()
                timed_out = True
                break
            time.sleep(0.002)
        proc.wait()
        tout.join(5)
        terr.join(5)
        for path, fd in drain_fds.items():
            while True:
                try:
                    block = os.read(fd, 1 << 20)
                except BlockingIOError:
                    break
                if not block:
                    break
                drains[path] += block
            os.close(fd)
        for t, path in threads:
            if t.is_alive():
                try:
                    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
                    os.close(fd)
                except OSError:
                    pass
        code = proc.returncode
        stdout_b = b"".join(out_chunks)
        stderr = b"".join(err_chunks).decode(errors="replace")
        res = dict(code=code, stdout=stdout_b.decode(errors="replace"), stdout_bytes=stdout_b, stderr=stderr,
                   drained=drains, seconds=time.time() - start)
        after = snapshot(d)
        # 1. Death, hang, panic.
        if timed_out:
            problems.append("hang: killed after %d s" % TIMEOUT)
        elif code < 0:
            problems.append("killed by signal %d" % -code)
        for bad in ("panicked", "internal error", "stack backtrace", "RUST_BACKTRACE", "memory allocation of"):
            if bad in stderr:
                problems.append("panic/abort on stderr (%s)" % bad)
                break
        # 2. Exit code and the error line.
        want = spec["code"]
        allowed = want if isinstance(want, set) else {want}
        if code not in allowed and not timed_out:
            problems.append("exit %d, expected %s" % (code, "/".join(map(str, sorted(allowed)))))
        if code not in (0,) and not timed_out and code > 0:
            lines = stderr.splitlines()
            if spec.get("notes_ok") and len(lines) > 1 and not any(l.startswith("bnn: error") for l in lines[:-1]):
                lines = lines[-1:]
            if len(lines) != 1:
                problems.append("error is %d lines, not one" % len(lines))
            elif not lines[0].startswith("bnn: error: "):
                problems.append("error line lacks 'bnn: error: '")
            elif len(lines[0]) > 300:
                problems.append("error line of %d characters (> 300)" % len(lines[0]))
            line = lines[0] if lines else ""
            for needle in spec.get("needles", []):
                if needle and needle not in line:
                    problems.append("error does not name %r" % needle)
            if stdout_b and not spec.get("partial"):
                problems.append("a failed run wrote %d bytes to stdout" % len(stdout_b))
            if any(ord(ch) < 32 and ch not in "\n" for ch in stderr):
                problems.append("control bytes on stderr")
        # 3. Files.
        outputs = set()
        leave = [os.path.relpath(os.path.abspath(o), d) for o in spec.get("leave_ok", [])]
        for o in spec.get("outputs", []):
            outputs.add(os.path.relpath(os.path.abspath(o), d))
        for rel, info in before.items():
            now = after.get(rel)
            if rel in outputs:
                if code != 0 and now != info:
                    problems.append("failed run changed its existing output %s (%s -> %s)" % (rel, describe(info), describe(now)))
                if code == 0 and info[0] == stat.S_IFREG and now is not None and (now[1], now[2]) != (info[1], info[2]):
                    problems.append("replaced output %s: mode/owner %o/%d -> %o/%d" % (rel, info[1], info[2], now[1], now[2]))
                continue
            if now != info:
                problems.append("%s changed: %s -> %s" % (rel, describe(info), describe(now)))
        for rel in after:
            if rel in before:
                continue
            base = os.path.basename(rel)
            if base.startswith(".") and base.endswith(".tmp"):
                problems.append("temporary left behind: %s" % rel)
            elif rel in outputs:
                if code != 0:
                    problems.append("failed run left output %s" % rel)
            elif any(rel == o or rel.startswith(o + os.sep) for o in leave):
                pass
            else:
                problems.append("stray file created: %s" % rel)
        if os.path.exists(NPM_MARK[0]):
            os.remove(NPM_MARK[0])
            if not spec.get("npm_ok"):
                problems.append("npm was run (a download was attempted)")
        # 4. Output correctness.
        if code == 0 and not problems and spec.get("check"):
            try:
                why = spec["check"](res, Ctx(bnn, d, env))
            except Exception as e:
                why = "output check failed: %s" % (str(e)[:200] or repr(e))
            if why:
                problems.append(why)
        return problems, res, args
    finally:
        subprocess.run(["chmod", "-R", "u+rwX", d], capture_output=True)
        shutil.rmtree(d, ignore_errors=True)


def main():
    global IMG, GRAY, KERNELS
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--bnn", default=os.path.join(ROOT, "target", "release", "bnn"))
    ap.add_argument("--only", default="", help="run only cases whose 'family: name' contains this")
    ap.add_argument("-v", "--verbose", action="store_true")
    a = ap.parse_args()
    bnn = os.path.abspath(a.bnn)
    if not os.access(bnn, os.X_OK):
        sys.exit("no bnn binary at %s: build with `cargo build --release` or pass --bnn" % bnn)
    if not os.path.exists(os.path.join(MNIST, "t10k-images-idx3-ubyte")):
        sys.exit("MNIST is not in %s: run `bnn fetch` first" % MNIST)
    if os.geteuid() != 0:
        sys.exit("run as root: the cases make device nodes and drop to nobody")
    IMG = test_images(10)
    GRAY = IMG[:784]
    work = tempfile.mkdtemp(prefix="bnn-hostile-bin-")
    import atexit
    atexit.register(shutil.rmtree, work, True)
    os.chmod(work, 0o755)
    # A copy nobody can run, and an `npm` that records that it was called.
    shutil.copy(bnn, os.path.join(work, "bnn"))
    bnn = os.path.join(work, "bnn")
    fake = os.path.join(work, "fakebin")
    NPM_MARK[0] = os.path.join(work, "npm-called")
    os.mkdir(fake)
    with open(os.path.join(fake, "npm"), "w") as f:
        f.write('#!/bin/sh\ntouch "%s"\necho "npm: no network in this test" >&2\nexit 1\n' % NPM_MARK[0])
    os.chmod(os.path.join(fake, "npm"), 0o755)
    os.chmod(fake, 0o755)
    base_env = {"PATH": fake + ":/usr/bin:/bin", "RAYON_NUM_THREADS": "2", "RUST_BACKTRACE": "1",
                "LC_ALL": "C.UTF-8", "HOME": work}
    k = subprocess.run([bnn, "kernels"], capture_output=True, env=base_env, text=True).stdout
    KERNELS = {l.split()[0] for l in k.splitlines() if " available" in l}
    repo_before = {p: hashlib.sha1(open(p, "rb").read()).hexdigest()
                   for top in (WEIGHTS, MNIST) for p in (os.path.join(top, n) for n in os.listdir(top)) if os.path.isfile(p)}
    for make in (idx_cases, npy_cases, image_cases, dir_cases, stream_cases, output_cases, kernel_cases,
                 model_cases, eval_cases, kernels_cases, npz_cases, fetch_cases):
        make()
    counts = {f: [0, 0] for f in FAMILIES}
    wrong = []
    started = time.time()
    for family, name, setup in CASES:
        label = "%s: %s" % (family, name)
        if a.only and a.only not in label:
            continue
        problems, res, args = run_case(bnn, family, name, setup, base_env, a.verbose)
        counts[family][0] += 1
        if problems:
            counts[family][1] += 1
            first = (res.get("stderr") or "").splitlines()[:1]
            wrong.append((label, args, res.get("code"), first[0] if first else "", problems))
        if a.verbose:
            print("%-6s %s (%.2f s)" % ("WRONG" if problems else "ok", label, res.get("seconds", 0)), flush=True)
    repo_after = {p: hashlib.sha1(open(p, "rb").read()).hexdigest() for p in repo_before}
    for p in repo_before:
        if repo_before[p] != repo_after[p]:
            wrong.append(("repository", [p], None, "", ["a shipped file changed"]))
    for f in FAMILIES:
        print("%s: %d cases, %d wrong" % (f, counts[f][0], counts[f][1]))
    for label, args, code, first, problems in wrong:
        print("WRONG %s\n  command: bnn %s\n  exit %s; stderr: %s\n  %s" % (
            label[:200], " ".join(repr(x) if (" " in x or not x) else x for x in args)[:400], code, first[:300],
            "; ".join(problems)))
    repo = sum(1 for w in wrong if w[0] == "repository")
    total = sum(c[0] for c in counts.values()) + repo
    failed = sum(c[1] for c in counts.values()) + repo
    print("(%.0f s)" % (time.time() - started), file=sys.stderr)
    print("%d passed, %d failed" % (total - failed, failed))
    sys.exit(1 if failed else 0)


KERNELS = set()
NPM_MARK = [None]

if __name__ == "__main__":
    main()
