#!/usr/bin/env python3
"""A hostile user's pass over `bnn train`, `bench`, `demo` and `export`.

Every case runs in its own temporary directory, under `timeout` and an
address-space limit, and is checked against the project's rules (docs/CLI.md,
"Output paths"; exit code 2 for usage errors and output paths the arguments
got wrong, 1 for everything else):

- no panic, abort, signal death or backtrace;
- a failure is exactly one line `bnn: error: ...` of at most 300
  characters (bench's `bench: ...` progress may come before it), naming
  what the case expects, with the expected exit code;
- nothing in the case's directory changes but the outputs the run may
  write: no input, refused output, special file or link is damaged, a
  replaced file keeps its mode and owner, no `.NAME.*.tmp` is left, no stray
  file appears; the shipped models and the shared MNIST copy are hashed
  before and after the whole pass;
- a run that exits 0 wrote what it says (models, reports, charts, JSON and
  exports are checked), and reports any count it clamped;
- interrupts (SIGINT, TERM, HUP, QUIT, USR1, ALRM) mid-run exit 128 + N and
  leave the old output intact.

Usage: python3 scripts/hostile/outputs.py [--bnn PATH] [-k SUBSTRING] [-v]

Needs root for mknod and chown (as the project's CI and containers run);
MNIST in data/mnist (`bnn fetch`). No network. Prints one line per family
and "N passed, N failed"; exits 1 if any case is wrong.
"""

import argparse
import hashlib
import json
import os
import resource
import shutil
import signal
import stat
import struct
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
OWNER = 4321  # uid and gid given to replaced outputs, to see that they are kept
TIMEOUT = 60
MEMORY = 8 << 30  # RLIMIT_AS: a huge allocation aborts instead of swapping

# --------------------------------------------------------------------------
# Shared fixtures, made once per pass.


def idx(magic_dims, payload):
    """IDX bytes: magic 0x0000 08 NDIM, big-endian dims, payload."""
    head = struct.pack(">BBBB", 0, 0, 8, len(magic_dims))
    head += b"".join(struct.pack(">I", d) for d in magic_dims)
    return head + payload


def cut_idx(path, n):
    """The first n items of an IDX file, as a new IDX file's bytes."""
    with open(path, "rb") as f:
        data = f.read()
    nd = data[3]
    dims = list(struct.unpack(">" + "I" * nd, data[4 : 4 + 4 * nd]))
    per = 1
    for d in dims[1:]:
        per *= d
    dims[0] = n
    body = data[4 + 4 * nd : 4 + 4 * nd + n * per]
    return idx(dims, body)


class Fixtures:
    """Small MNIST, checkpoints and models shared (read-only) by the cases."""

    def __init__(self, bnn, top):
        self.bnn = bnn
        self.top = top
        src = os.path.join(ROOT, "data", "mnist")
        names = {
            "train-images-idx3-ubyte": 700,
            "train-labels-idx1-ubyte": 700,
            "t10k-images-idx3-ubyte": 200,
            "t10k-labels-idx1-ubyte": 200,
        }
        self.mnist_bytes = {}
        for name, n in names.items():
            p = os.path.join(src, name)
            if not os.path.exists(p):
                sys.exit(f"{p} is missing: run `bnn fetch` first")
            self.mnist_bytes[name] = cut_idx(p, n)
        self.data = os.path.join(top, "mnist")
        self.put_mnist(self.data)
        # Checkpoints and models of a few kinds of run.
        self.files = {}
        made = os.path.join(top, "made")
        os.mkdir(made)
        runs = {
            "seed": QUICK,
            "bn": ["--recipe", "bn", "--limit-train", "600", "--limit-test", "100",
                   "--validation", "100", "--epochs", "1", "--hidden", "16"],
            "cnn": ["--limit-train", "600", "--limit-test", "100", "--validation", "100",
                    "--epochs", "1", "--arch", "c3x4,p2,d10", "--recipe", "cnn-small"],
            "fp32": ["--recipe", "fp32", "--limit-train", "600", "--limit-test", "100",
                     "--validation", "100", "--epochs", "1", "--hidden", "16"],
        }
        for name, args in runs.items():
            ext = "f32" if name == "fp32" else "bnn"
            out = os.path.join(made, f"{name}.{ext}")
            cmd = [bnn, "train", "--data", self.data, "--no-fetch", "--progress", "none",
                   "--threads", "1", "-o", out] + args
            r = subprocess.run(cmd, capture_output=True, timeout=120)
            if r.returncode != 0:
                sys.exit(f"fixture run failed: {' '.join(cmd)}\n{r.stderr.decode()}")
            self.files[f"{name}_model"] = read(out)
            self.files[f"{name}_ckpt"] = read(os.path.join(made, f"{name}.ckpt"))
        self.files["shipped"] = read(os.path.join(ROOT, "weights", "seed.bnn"))

    def put_mnist(self, where):
        os.makedirs(where, exist_ok=True)
        for name, data in self.mnist_bytes.items():
            write(os.path.join(where, name), data)


def read(path):
    with open(path, "rb") as f:
        return f.read()


def write(path, data, mode=None):
    with open(path, "wb") as f:
        f.write(data)
    if mode is not None:
        os.chmod(path, mode)


QUICK = ["--limit-train", "600", "--limit-test", "100", "--validation", "100",
         "--epochs", "1", "--hidden", "16"]

# --------------------------------------------------------------------------
# Snapshots of a case's directory.


def snapshot(top):
    """Every entry under `top` (links not followed): type, content hash or
    link text or device number, mode and owner."""
    snap = {}
    for dirpath, dirnames, filenames in os.walk(top):
        for name in dirnames + filenames:
            p = os.path.join(dirpath, name)
            rel = os.path.relpath(p, top)
            st = os.lstat(p)
            m = st.st_mode
            if stat.S_ISLNK(m):
                what = ("link", os.readlink(p))
            elif stat.S_ISREG(m):
                h = hashlib.sha256()
                with open(p, "rb") as f:
                    for block in iter(lambda: f.read(1 << 20), b""):
                        h.update(block)
                what = ("file", h.hexdigest())
            elif stat.S_ISDIR(m):
                what = ("dir", None)
            elif stat.S_ISCHR(m) or stat.S_ISBLK(m):
                what = ("dev", st.st_rdev)
            elif stat.S_ISFIFO(m):
                what = ("fifo", None)
            else:
                what = ("other", None)
            snap[rel] = (what, stat.S_IMODE(m), st.st_uid, st.st_gid)
    return snap


def matches(rel, patterns):
    for p in patterns:
        if p.endswith("/*") and (rel == p[:-2] or rel.startswith(p[:-1])):
            return True
        if rel == p:
            return True
    return False


def compare(before, after, allowed):
    """Problems between two snapshots, given the paths that may change."""
    problems = []
    for rel, (what, mode, uid, gid) in before.items():
        if rel not in after:
            if not matches(rel, allowed):
                problems.append(f"{rel} was removed")
            continue
        what2, mode2, uid2, gid2 = after[rel]
        if what2[0] != what[0]:
            problems.append(f"{rel} changed from {what[0]} to {what2[0]}")
            continue
        if what != what2 and not matches(rel, allowed):
            problems.append(f"{rel} ({what[0]}) was changed but is not an output of the run")
        if (mode, uid, gid) != (mode2, uid2, gid2) and what[0] != "link":
            problems.append(
                f"{rel}: mode/owner {oct(mode)} {uid}:{gid} became {oct(mode2)} {uid2}:{gid2}")
    for rel in after:
        base = os.path.basename(rel)
        if base.startswith(".") and base.endswith(".tmp"):
            problems.append(f"temporary {rel} left behind")
        elif rel not in before and not matches(rel, allowed):
            problems.append(f"stray file {rel} created")
    return problems


# --------------------------------------------------------------------------
# Cases.


class Case:
    """One run of bnn and what it must do.

    argv, needles, outputs and may are templates formatted with the case's
    context: {d} its directory, {data} the shared MNIST, {root} the repo.
    code: the exit code expected (an int or a tuple of acceptable ones).
    outputs: paths under {d} the run must write when it succeeds.
    may: paths that may change even when it fails (a checkpoint after an
    interrupt). setup(ctx) makes files; check(ctx, res) returns problems.
    stdio: {'stdout'|'stderr': 'full' | 'closed' | 'leave' | 'devnull'}.
    sig: (signal, seconds) sent mid-run. fifo: [(path, 'read'|bytes)]."""

    def __init__(self, fam, name, argv, code, setup=None, needles=(), outputs=(), may=(),
                 check=None, stdio=None, sig=None, cwd=None, fifo=(), pass_fd=None,
                 stdout_empty=True):
        self.fam, self.name, self.argv, self.code = fam, name, argv, code
        self.setup, self.needles, self.outputs, self.may = setup, needles, outputs, may
        self.check, self.stdio, self.sig, self.cwd = check, stdio or {}, sig, cwd
        self.fifo, self.pass_fd, self.stdout_empty = fifo, pass_fd, stdout_empty


class Result:
    def __init__(self, code, stdout, stderr, seconds):
        self.code, self.stdout, self.stderr, self.seconds = code, stdout, stderr, seconds


def limits():
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY, MEMORY))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    os.setsid()


def fmt(t, ctx):
    return t.format(**ctx) if isinstance(t, str) else t


def feed_fifo(path, what, stop):
    """Serves one FIFO: reads it to the end, or writes `what` into it."""
    try:
        if what == "read":
            fd = os.open(path, os.O_RDONLY)
            while os.read(fd, 1 << 16):
                pass
            os.close(fd)
        else:
            fd = os.open(path, os.O_WRONLY)
            try:
                os.write(fd, what)
            except BrokenPipeError:
                pass
            os.close(fd)
    except OSError:
        pass


def release_fifo(path, what):
    """Unblocks a FIFO server whose other end bnn never opened."""
    try:
        flags = os.O_WRONLY | os.O_NONBLOCK if what == "read" else os.O_RDONLY | os.O_NONBLOCK
        fd = os.open(path, flags)
        os.close(fd)
    except OSError:
        pass


def run_case(bnn, fx, case, keep=False):
    d = tempfile.mkdtemp(prefix="bnn-hostile-")
    ctx = {"d": d, "data": fx.data, "root": ROOT, "bnn": bnn}
    problems = []
    res = None
    try:
        if case.setup:
            case.setup(ctx, fx)
        argv = [bnn] + [fmt(a, ctx) for a in case.argv]
        allowed_ok = [os.path.relpath(fmt(p, ctx), d) if fmt(p, ctx).startswith("/")
                      else fmt(p, ctx) for p in case.outputs]
        may = [fmt(p, ctx) for p in case.may]
        before = snapshot(d)
        res = execute(argv, case, ctx)
        after = snapshot(d)
        problems += judge(case, ctx, res)
        allowed = may + (allowed_ok if res.code == 0 else [])
        problems += compare(before, after, allowed)
        if res.code == 0:
            for p in allowed_ok:
                if p.endswith("/*"):
                    continue
                full = os.path.join(d, p)
                if not os.path.lexists(full):
                    problems.append(f"output {p} was not written")
        if case.check and res.code == 0:
            problems += case.check(ctx, res) or []
    except Exception as e:  # a broken case is reported, not hidden
        problems.append(f"case error: {type(e).__name__}: {e}")
    finally:
        if not keep:
            shutil.rmtree(d, ignore_errors=True)
    return res, problems


def execute(argv, case, ctx):
    stdin = subprocess.DEVNULL
    opened = []
    leave = {}

    def stream(which):
        mode = case.stdio.get(which)
        if mode is None:
            return subprocess.PIPE
        if mode == "full":
            f = open("/dev/full", "wb")
            opened.append(f)
            return f
        if mode == "devnull":
            return subprocess.DEVNULL
        if mode == "leave":
            r, w = os.pipe()
            leave[which] = r
            opened.append(w)
            return w
        if mode == "closed":
            return subprocess.DEVNULL  # closed in the child, below
        raise ValueError(mode)

    out, err = stream("stdout"), stream("stderr")
    closed = [fd for fd, which in ((1, "stdout"), (2, "stderr"))
              if case.stdio.get(which) == "closed"]
    pass_fds = ()
    if case.pass_fd is not None:
        fd_no, rel = case.pass_fd
        target = os.open(fmt(rel, ctx), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        pass_fds = (fd_no,)
        if target != fd_no:
            os.dup2(target, fd_no)
            os.close(target)

    def pre():
        limits()
        for fd in closed:
            os.close(fd)

    servers = []
    for path, what in case.fifo:
        p = fmt(path, ctx)
        t = threading.Thread(target=feed_fifo, args=(p, what, None), daemon=True)
        t.start()
        servers.append((t, p, what))
    start = time.time()
    proc = subprocess.Popen(argv, stdin=stdin, stdout=out, stderr=err, cwd=fmt(case.cwd, ctx) or ctx["d"],
                            preexec_fn=pre, pass_fds=pass_fds)
    if pass_fds:
        os.close(pass_fds[0])
    for f in opened:
        if isinstance(f, int):
            os.close(f)
        else:
            f.close()
    for which, r in leave.items():
        # The reader takes a little and leaves.
        try:
            os.read(r, 10)
        except OSError:
            pass
        os.close(r)
    if case.sig:
        signum, delay = case.sig
        time.sleep(delay)
        try:
            os.kill(proc.pid, signum)
        except ProcessLookupError:
            pass
    try:
        stdout, stderr = proc.communicate(timeout=TIMEOUT)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        stdout, stderr = proc.communicate()
        return Result("timeout", stdout or b"", stderr or b"", time.time() - start)
    finally:
        for t, p, what in servers:
            if t.is_alive():
                release_fifo(p, what)
            t.join(5)
    return Result(proc.returncode, stdout or b"", stderr or b"", time.time() - start)


def judge(case, ctx, res):
    problems = []
    code = res.code
    err = res.stderr.decode("utf-8", "replace")
    if code == "timeout":
        return [f"hang: no exit within {TIMEOUT} s"]
    if code < 0:
        problems.append(f"killed by signal {-code} ({signal.Signals(-code).name})")
    for bad in ("panicked", "internal error", "RUST_BACKTRACE", "stack backtrace", "overflow"):
        if bad in err:
            problems.append(f"stderr has {bad!r}")
    want = case.code if isinstance(case.code, tuple) else (case.code,)
    if code not in want:
        problems.append(f"exit {code}, expected {' or '.join(map(str, want))}")
    captured = "stderr" not in case.stdio
    if code not in (0,) and code > 0 and code < 128 and captured:
        lines = err.splitlines()
        errors = [l for l in lines if l.startswith("bnn: error: ")]
        other = [l for l in lines if not l.startswith("bnn: error: ") and not l.startswith("bench: ")]
        if len(errors) != 1 or other or not lines or not lines[-1].startswith("bnn: error: "):
            problems.append(f"error is not one `bnn: error:` line: {err[:300]!r}")
        elif len(errors[0]) - quoted_length(errors[0], case, ctx) > 300:
            # A path that is itself near NAME_MAX may be quoted whole.
            problems.append(f"error line of {len(errors[0])} characters")
        else:
            for n in case.needles:
                # A needle may be a tuple of alternatives: the flag, or the
                # name the configuration gives the setting.
                alts = [fmt(a, ctx) for a in (n if isinstance(n, tuple) else (n,))]
                if not any(a in errors[0] for a in alts):
                    problems.append(f"error does not mention {' or '.join(map(repr, alts))}")
        if case.stdout_empty and res.stdout and "stdout" not in case.stdio:
            problems.append(f"a failed run printed on stdout: {res.stdout[:100]!r}")
    if code == 0 and captured and "bnn: error" in err:
        problems.append("exit 0 with an error on stderr")
    return problems


def quoted_length(line, case, ctx):
    """The longest argument of the case that the line quotes."""
    args = [fmt(a, ctx) for a in case.argv]
    return max([len(a) for a in args if len(a) > 100 and a in line] + [0])


def first_line(res):
    if res is None or not isinstance(res.stderr, bytes):
        return ""
    lines = res.stderr.decode("utf-8", "replace").splitlines()
    return lines[-1] if lines else ""


# --------------------------------------------------------------------------
# Output checks.


def is_model(path):
    with open(path, "rb") as f:
        head = f.read(8)
    return head in (b"\x89BNN\r\n\x1a\n", b"\x89BNNF32\n")


def train_ok(model="m.bnn", report="m.json", chart="m.svg", ckpt="m.ckpt", extra=None):
    def check(ctx, res):
        d = ctx["d"]
        problems = []
        if model and not is_model(os.path.join(d, model)):
            problems.append(f"{model} is not a model")
        if report:
            try:
                with open(os.path.join(d, report)) as f:
                    rep = json.load(f)
                if "history" not in rep:
                    problems.append(f"{report} has no history")
            except (OSError, ValueError) as e:
                problems.append(f"{report} is not a JSON report: {e}")
        if chart:
            with open(os.path.join(d, chart), "rb") as f:
                if b"<svg" not in f.read(200):
                    problems.append(f"{chart} is not an SVG")
        if ckpt:
            with open(os.path.join(d, ckpt), "rb") as f:
                if f.read(8) != b"BNNCKPT\n":
                    problems.append(f"{ckpt} is not a checkpoint")
        if extra:
            problems += extra(ctx, res) or []
        return problems

    return check


def T(*args):
    """A train command on the shared small MNIST."""
    return ["train", "--data", "{data}", "--no-fetch", "--progress", "none", "--threads", "1"] + list(args)


def M(name="m"):
    return [f"{name}.bnn", f"{name}.json", f"{name}.svg", f"{name}.ckpt"]


def setup_files(**files):
    """A setup writing `name=bytes-or-callable(fx)` into the case directory."""

    def setup(ctx, fx):
        for name, data in files.items():
            name = name.replace("__", ".")
            if callable(data):
                data = data(fx)
            write(os.path.join(ctx["d"], name), data)

    return setup


def combine(*setups):
    def setup(ctx, fx):
        for s in setups:
            if s:
                s(ctx, fx)

    return setup


def sh(*cmds):
    """A setup running shell commands in the case directory."""

    def setup(ctx, fx):
        for c in cmds:
            subprocess.run(fmt(c, ctx), shell=True, check=True, cwd=ctx["d"])

    return setup


def local_mnist(ctx, fx):
    fx.put_mnist(os.path.join(ctx["d"], "data"))


# Kinds of output path: (name, setup, what argv gets, code on success, what
# must change when it succeeds, needles when refused).
def path_kinds(target, role_out):
    """Paths an output flag may be given, for an output file named `target`
    (relative to the case directory). Each kind: name, setup, path, expected
    code, the outputs changed when it succeeds, needles of the refusal."""
    t = target
    ok = [t]
    return [
        ("new file", None, f"{{d}}/{t}", 0, ok, ()),
        ("existing 640 4321", sh(f"echo OLD > {t}", f"chmod 640 {t}", f"chown {OWNER}:{OWNER} {t}"),
         f"{{d}}/{t}", 0, ok, ()),
        ("existing 400 read-only", sh(f"echo OLD > {t}", f"chmod 400 {t}"), f"{{d}}/{t}", 0, ok, ()),
        ("link to file", sh("echo OLD > real", "chmod 604 real", f"ln -s real {t}"), f"{{d}}/{t}", 0,
         ["real"], ()),
        ("link to file elsewhere", sh("mkdir sub", "echo OLD > sub/real", f"ln -s sub/real {t}"),
         f"{{d}}/{t}", 0, ["sub/real"], ()),
        ("dangling link", sh(f"ln -s created {t}"), f"{{d}}/{t}", 0, ["created"], ()),
        ("link to dir", sh("mkdir adir", f"ln -s adir {t}"), f"{{d}}/{t}", 2, [], ("is a directory",)),
        ("directory", sh(f"mkdir {t}"), f"{{d}}/{t}", 2, [], ("is a directory",)),
        ("directory with slash", sh(f"mkdir {t}"), f"{{d}}/{t}/", 2, [], ()),
        ("missing dir", None, f"{{d}}/nope/{t}", 2, [], ("nope", "does not exist")),
        ("file as dir", sh("echo x > afile"), f"{{d}}/afile/{t}", 2, [], ("afile", "not a directory")),
        ("link loop", sh(f"ln -s loop2 {t}", f"ln -s {t} loop2"), f"{{d}}/{t}", (1, 2), [], ()),
        ("char device null", sh("mknod nul c 1 3"), "{d}/nul", 0, [], ()),
        ("char device full", sh("mknod ful c 1 7"), "{d}/ful", 1, [], ("ful",)),
        ("fifo with reader", sh("mkfifo ff"), "{d}/ff", 0, [], ()),
        ("closed descriptor", None, "/dev/fd/57", 2, [], ("/dev/fd/57",)),
        ("open descriptor", None, "/dev/fd/58", 0, ["fd58.out"], ()),
        ("empty path", None, "", 2, [], ()),
        ("name too long", None, "{d}/" + "n" * 256, (1, 2), [], ()),
        ("dot", None, "{d}/.", 2, [], ()),
    ]


def kind_case(fam, role, argv_of, kind, extra_setup=None, base_outputs=(), check=None):
    """A case writing the output `role` onto one kind of path."""
    name, setup, path, code, changed, needles = kind
    fifo = [("{d}/ff", "read")] if "fifo" in name else []
    pass_fd = (58, "{d}/fd58.out") if name == "open descriptor" else None
    if pass_fd:
        setup = combine(setup, sh("echo KEEP > fd58.out"))
    outputs = list(base_outputs) + list(changed)
    # A full device fails only when written: what was written before stays.
    may = list(base_outputs) if name == "char device full" else []
    return Case(fam, f"{role} onto {name}", argv_of(path), code, setup=combine(extra_setup, setup),
                needles=needles, outputs=outputs, may=may, check=check, fifo=fifo, pass_fd=pass_fd)


# --------------------------------------------------------------------------
# train


NUMERIC = ["-1", "0", "1", "99999999999999999999", "1e30", "1e39", "nan", "NaN", "inf", "-inf",
           "abc", "", "1.5", "0x10", "-0"]

# For each flag, the values that are fine (exit 0); every other value is
# refused (exit 2). Values in `either` may go either way.
# ("-0" is not an unsigned integer to Rust's parser: either way is fine;
# 99999999999999999999 is a fine f32, 1e20.)
FLAG_OK = {
    "--seed": ({"0", "1"}, {"-0"}),
    "--epochs": ({"1"}, set()),
    "--lr": ({"1", "1e30", "1.5", "99999999999999999999"}, {"0", "-0"}),
    "--batch": ({"1"}, set()),
    "--ste-clip": ({"1", "1e30", "1.5", "99999999999999999999"}, {"0", "-0"}),
    "--dynamic-clip": ({"1", "1.5"}, {"1e30", "99999999999999999999"}),
    "--dropout": ({"0", "-0"}, set()),
    "--shift": ({"0", "1"}, {"-0"}),
    "--rotate": ({"0", "1", "1.5", "-0"}, set()),
    "--scale": ({"0", "-0"}, set()),
    "--init-std": ({"1", "1.5"}, {"1e30", "99999999999999999999"}),
    "--output-scale": ({"1", "1.5"}, {"1e30", "0", "-0", "99999999999999999999"}),
    # The validation split must hold an image.
    "--validation": ({"1"}, {"-0"}),
    "--limit-train": (set(), set()),
    "--limit-test": ({"1"}, set()),
    "--threads": ({"1"}, set()),
}

# What the configuration's own messages call each setting.
CONCEPT = {
    "--lr": "learning rate", "--ste-clip": "STE clip", "--dynamic-clip": "dynamic clip",
    "--dropout": "dropout", "--rotate": "rotation", "--scale": "scale", "--epochs": "epochs",
    "--batch": "batch", "--init-std": "initial weight scale", "--output-scale": "output scale",
    "--validation": "validation", "--optimizer": "momentum", "--schedule": "schedule",
    "--limit-train": "training", "--limit-test": "test",
}


def flag_needle(flag):
    return (flag, CONCEPT[flag]) if flag in CONCEPT else flag


def train_cases():
    cases = []
    fam = "train"

    # Every numeric flag with bad values.
    for flag, (ok, either) in FLAG_OK.items():
        for v in NUMERIC:
            base = {"--epochs": ["--limit-train", "600", "--limit-test", "100", "--validation", "100",
                                 "--hidden", "16"],
                    "--limit-train": ["--limit-test", "100", "--validation", "100", "--epochs", "1",
                                      "--hidden", "16"],
                    "--limit-test": ["--limit-train", "600", "--validation", "100", "--epochs", "1",
                                     "--hidden", "16"],
                    "--validation": ["--limit-train", "600", "--limit-test", "100", "--epochs", "1",
                                     "--hidden", "16"]}.get(flag, QUICK)
            argv = T(*base)
            if flag == "--threads":
                i = argv.index("--threads")
                del argv[i : i + 2]
            argv = argv + [f"{flag}={v}", "-o", "{d}/m.bnn"]
            if v in ok:
                code = 0
            elif v in either:
                code = (0, 2)
            else:
                code = 2
            needles = () if code != 2 else (flag_needle(flag),)
            cases.append(Case(fam, f"{flag}={v!r}", argv, code, needles=needles, outputs=M(),
                              check=train_ok()))

    # Enumerated and grammar flags.
    grammar = [
        ("--optimizer", ["sgd", "momentum", "momentum:0.5", "adam"],
         ["momentum:1.5", "momentum:-1", "momentum:nan", "momentum:", "momentum:inf", "adam:0.9", "",
          "rmsprop", "momentum:0.9:1", "momentum:1", "sgd:", "adam:"]),
        ("--schedule", ["constant", "step:1:0.5", "cosine:0.0001", "exp:0.0001"],
         ["step:0:0.5", "step:1:nan", "step:1:-1", "step:1", "cosine:nan", "cosine:-1", "exp:inf",
          "exp:-1", "foo", "", "step:1:0.5:9", "cosine:1e39", "step:-1:0.5", "step:1:inf"]),
        ("--loss", ["mse", "cross-entropy", "squared-hinge"], ["x", "", "MSE2"]),
        ("--input", ["u8", "binary"], ["float", ""]),
        ("--rule", ["scores", "seed"], ["argmax", ""]),
        ("--progress", ["log", "bar", "none", "auto"], ["verbose", ""]),
        ("--recipe", [], ["seed2", "", "cnn-big"]),
        ("--padding", [], ["full", ""]),
    ]
    for flag, good, bad in grammar:
        for v in good:
            argv = T(*QUICK) + ["-o", "{d}/m.bnn", f"{flag}={v}"]
            if flag == "--progress":
                argv = [a for a in argv if a not in ("--progress", "none")]
            cases.append(Case(fam, f"{flag}={v!r}", argv, 0, outputs=M(), check=train_ok()))
        for v in bad:
            argv = T(*QUICK) + ["-o", "{d}/m.bnn", f"{flag}={v}"]
            needles = ((flag, "learning rate", "step schedule", "momentum"),)
            cases.append(Case(fam, f"{flag}={v!r}", argv, 2, needles=needles))

    # Hidden widths.
    hidden_ok = ["1", "16,16", "8,8,8,8"]
    hidden_bad = ["0", "", "16,,16", "-1", "16,0", "abc", "1e3", "16;16", "99999999999999999999",
                  "65536,65536", "1000000", "4294967296"]
    base = ["--limit-train", "600", "--limit-test", "100", "--validation", "100", "--epochs", "1"]
    for v in hidden_ok:
        cases.append(Case(fam, f"--hidden={v!r}", T(*base) + [f"--hidden={v}", "-o", "{d}/m.bnn"], 0,
                          outputs=M(), check=train_ok()))
    for v in hidden_bad:
        cases.append(Case(fam, f"--hidden={v!r}", T(*base) + [f"--hidden={v}", "-o", "{d}/m.bnn"], 2,
                          needles=("hidden",) if v not in ("65536,65536", "1000000", "4294967296")
                          else ()))
    cases.append(Case(fam, "--hidden 16 16 (two values)", T(*base) + ["--hidden", "16", "16", "-o", "{d}/m.bnn"],
                      0, outputs=M(), check=train_ok()))

    # Architecture grammar.
    arch_ok = ["c3x4,p2,d10", "c3x4,d10", "c1x2,d10", "c15x2,d10", "c3x2,p2,c3x2,p2,d16,d10",
               "c3x2,c3x2,d10"]
    arch_bad = ["", ",", "c2x4,d10", "c17x4,d10", "c3x0,d10", "c3x4,p2,p2,d10", "p2,c3x4,d10", "d10",
                "d10,c3x4", "c3x4,d5", "c3x4,d0,d10", "c3x99999999999,d10", "c3x4,p3,d10", "C3X4,D10",
                " c3x4,d10", "c3x4,,d10", "c3x4,d10,", "c3x-4,d10", "cx4,d10", "c3x,d10", "c3x4;d10",
                "c3x4,p2,c3x4,p2,c3x4,p2,c3x4,p2,c3x4,p2,d10", "c\uff13x4,d10", "c3x100000,d10",
                "c3x4,d4294967296,d10", "c3x4,d18446744073709551616,d10", "c3x4,d10,d10,d10,p2",
                "c3x4,d16,c3x4,d10", "c0x4,d10", "c3x4", "c3x4,p2"]
    # Convolutions need batch norm (the seed recipe has none): --bn.
    for v in arch_ok:
        cases.append(Case(fam, f"--arch={v!r}", T(*base) + ["--bn", f"--arch={v}", "-o", "{d}/m.bnn"], 0,
                          outputs=M(), check=train_ok()))
    for v in arch_bad:
        needles = () if v in ("c3x100000,d10",) else ("arch",)
        code = (0, 2) if v == " c3x4,d10" else 2
        cases.append(Case(fam, f"--arch={v!r}", T(*base) + ["--bn", f"--arch={v}", "-o", "{d}/m.bnn"], code,
                          needles=needles, outputs=M(), check=train_ok()))
    cases.append(Case(fam, "--arch without batch norm", T(*base) + ["--arch", "c3x4,d10", "-o", "{d}/m.bnn"], 2,
                      needles=("batch norm",)))
    combos = [
        ("--arch with --hidden", ["--arch", "c3x4,d10", "--hidden", "16"], 2),
        ("--arch valid padding shrinks to nothing", ["--bn", "--arch", "c15x2,c15x2,d10", "--padding", "valid"], 2),
        ("--arch valid padding", ["--bn", "--arch", "c3x2,p2,d10", "--padding", "valid"], 0),
        ("--arch with --input u8", ["--bn", "--arch", "c3x2,p2,d10", "--input", "u8"], 0),
        ("--arch with --recipe fp32", ["--bn", "--arch", "c3x2,p2,d10", "--recipe", "fp32"], (0, 2)),
        ("--arch with --no-bn", ["--arch", "c3x2,p2,d10", "--no-bn"], (0, 2)),
        ("--bn with --no-bn", ["--hidden", "16", "--bn", "--no-bn"], 2),
        ("--recipe cnn with --hidden", ["--recipe", "cnn", "--hidden", "16"], (0, 2)),
        ("--padding without a CNN", ["--hidden", "16", "--padding", "valid"], (0, 2)),
        ("--dynamic-clip with --ste-clip", ["--hidden", "16", "--dynamic-clip", "1", "--ste-clip", "2"], (0, 2)),
        ("--validation equal to --limit-train", ["--hidden", "16", "--validation", "600"], 2),
        ("--validation above --limit-train", ["--hidden", "16", "--validation", "601"], 2),
        ("--limit-train above the set", ["--hidden", "16", "--limit-train", "701"], 2),
        ("--limit-test above the set", ["--hidden", "16", "--limit-test", "201"], 2),
        ("--batch above the training set", ["--hidden", "16", "--batch", "100000"], (0, 2)),
        ("--batch huge", ["--hidden", "16", "--batch", "1000000000000"], 2),
        ("--no-checkpoint with --checkpoint", ["--hidden", "16", "--no-checkpoint", "--checkpoint", "{d}/c"], 2),
        ("--recipe deep-u8 --batch huge", ["--recipe", "deep-u8", "--batch", "100000000"], 2),
        ("--rotate 360", ["--hidden", "16", "--rotate", "360"], (0, 2)),
        ("--shift 28", ["--hidden", "16", "--shift", "28"], (0, 2)),
        ("--shift 1000000", ["--hidden", "16", "--shift", "1000000"], (0, 2)),
        ("--scale 1", ["--hidden", "16", "--scale", "1"], 2),
        ("--dropout 1", ["--hidden", "16", "--dropout", "1"], 2),
        ("--dropout 0.9", ["--hidden", "16", "--dropout", "0.9"], 0),
        ("--dropout 0.95 (the documented limit)", ["--hidden", "16", "--dropout", "0.95"], 2),
        ("unknown flag", ["--hidden", "16", "--hiden", "16"], 2),
        ("positional argument", ["--hidden", "16", "extra"], 2),
    ]
    for name, args, code in combos:
        argv = T("--limit-train", "600", "--limit-test", "100", "--validation", "100", "--epochs", "1")
        # later flags win for repeated ones: drop the base's when overridden
        for f in ("--limit-train", "--limit-test", "--validation"):
            if f in args:
                i = argv.index(f)
                del argv[i : i + 2]
        argv = argv + args + ["-o", "{d}/m.bnn"]
        cases.append(Case(fam, name, argv, code, outputs=M(), check=train_ok()))

    # Outputs onto every kind of path, per role.
    roles = [
        ("-o", "m.bnn", lambda p: T(*QUICK) + ["-o", p, "--report", "{d}/r.json", "--chart", "{d}/c.svg",
                                               "--checkpoint", "{d}/k.ckpt"],
         ["r.json", "c.svg", "k.ckpt"]),
        ("--report", "r.json", lambda p: T(*QUICK) + ["-o", "{d}/m.bnn", "--report", p], ["m.bnn", "m.svg", "m.ckpt"]),
        ("--chart", "c.svg", lambda p: T(*QUICK) + ["-o", "{d}/m.bnn", "--chart", p], ["m.bnn", "m.json", "m.ckpt"]),
        ("--checkpoint", "k.ckpt", lambda p: T(*QUICK) + ["-o", "{d}/m.bnn", "--checkpoint", p],
         ["m.bnn", "m.json", "m.svg"]),
    ]
    for role, target, argv_of, others in roles:
        for kind in path_kinds(target, role):
            cases.append(kind_case(fam, f"train {role}", argv_of, kind, base_outputs=others))
    # -o onto special files without companions named: nothing beside.
    for name, setup, path, code in [
        ("device", sh("mknod nul c 1 3"), "{d}/nul", 0),
        ("full device", sh("mknod ful c 1 7"), "{d}/ful", 1),
        ("fifo", sh("mkfifo ff"), "{d}/ff", 0),
        ("/dev/stdout", None, "/dev/stdout", 0),
        ("/dev/fd/1", None, "/dev/fd/1", 0),
        ("link to device", sh("mknod nul c 1 3", "ln -s nul lnk"), "{d}/lnk", 0),
    ]:
        fifo = [("{d}/ff", "read")] if name == "fifo" else []
        cases.append(Case(fam, f"-o onto {name} alone", T(*QUICK) + ["-o", path], code, setup=setup,
                          fifo=fifo, needles=("ful",) if code == 1 else (), stdout_empty=False))
    # Two outputs the same file, outputs onto inputs.
    same = [
        ("-o = --report", ["-o", "{d}/m.bnn", "--report", "{d}/m.bnn"], None),
        ("--chart = --checkpoint", ["-o", "{d}/m.bnn", "--chart", "{d}/x", "--checkpoint", "{d}/x"], None),
        ("--report via link = model", ["-o", "{d}/m.bnn", "--report", "{d}/l"], sh("ln -s m.bnn l")),
        ("-o m.json (default report)", ["-o", "{d}/m.json"], None),
        ("-o m.ckpt (default checkpoint)", ["-o", "{d}/m.ckpt"], None),
        ("--report = default checkpoint", ["-o", "{d}/m.bnn", "--report", "{d}/m.ckpt"], None),
        ("--chart = model through ..", ["-o", "{d}/m.bnn", "--chart", "{d}/sub/../m.bnn"], sh("mkdir sub")),
        ("--report hard link of model", ["-o", "{d}/m.bnn", "--report", "{d}/h"], sh("echo OLD > m.bnn", "ln m.bnn h")),
        ("all four one file", ["-o", "{d}/x", "--report", "{d}/x", "--chart", "{d}/x", "--checkpoint", "{d}/x"], None),
    ]
    for name, args, setup in same:
        cases.append(Case(fam, name, T(*QUICK) + args, 2, setup=setup, needles=("both",)))
    for role in ("-o", "--report", "--chart", "--checkpoint"):
        for f in ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte",
                  "t10k-labels-idx1-ubyte"):
            cases.append(Case(fam, f"{role} onto the input {f}",
                              ["train", "--data", "{d}/data", "--no-fetch", "--progress", "none"] + QUICK
                              + (["-o", "{d}/m.bnn"] if role != "-o" else []) + [role, "{d}/data/" + f], 2,
                              setup=local_mnist,
                              needles=(f, "input")))
        cases.append(Case(fam, f"{role} onto a link to an input",
                          ["train", "--data", "{d}/data", "--no-fetch", "--progress", "none"] + QUICK
                          + (["-o", "{d}/m.bnn"] if role != "-o" else []) + [role, "{d}/lnk"], 2,
                          setup=combine(local_mnist, sh("ln -s data/t10k-images-idx3-ubyte lnk")),
                          needles=("input",)))
        cases.append(Case(fam, f"{role} onto a missing MNIST file that would be fetched",
                          ["train", "--data", "{d}/data", "--progress", "none"] + QUICK
                          + (["-o", "{d}/m.bnn"] if role != "-o" else [])
                          + [role, "{d}/data/train-images-idx3-ubyte"], 2,
                          setup=sh("mkdir data"), needles=("input",)))

    # --resume.
    def ck(name="seed", as_="r.ckpt", mode=None, owner=False, mutate=None):
        def setup(ctx, fx):
            data = fx.files[f"{name}_ckpt"]
            if mutate:
                data = mutate(data)
            p = os.path.join(ctx["d"], as_)
            write(p, data, mode)
            if owner:
                os.chown(p, OWNER, OWNER)
        return setup

    R = ["train", "--data", "{data}", "--no-fetch", "--resume", "{d}/r.ckpt", "-o", "{d}/m.bnn"]
    resume_ok = [
        # A finished run has no epoch left to checkpoint.
        ("resume a finished run", [], M()[:3]),
        ("resume --epochs 2", ["--epochs", "2"], M()),
        ("resume --epochs 1 (same)", ["--epochs", "1"], M()[:3]),
        ("resume with its limits", ["--limit-train", "600", "--limit-test", "100"], M()[:3]),
        ("resume --no-checkpoint", ["--no-checkpoint", "--epochs", "2"], M()[:3]),
        ("resume --checkpoint = resume", ["--checkpoint", "{d}/r.ckpt", "--epochs", "2"], M()[:3] + ["r.ckpt"]),
        ("resume --progress log", ["--progress", "log", "--epochs", "2"], M()),
        ("resume --threads 2", ["--threads", "2", "--epochs", "2"], M()),
    ]
    def quiet(args):
        """--progress none and --threads 1 unless the case gives them."""
        return args + [x for f, v in (("--progress", "none"), ("--threads", "1")) if f not in args for x in (f, v)]

    for name, args, outs in resume_ok:
        cases.append(Case(fam, name, R + quiet(args), 0, setup=ck(), outputs=outs,
                          check=train_ok(ckpt="m.ckpt" if "m.ckpt" in outs else None)))
    for kind in ("bn", "cnn", "fp32"):
        out = "{d}/m.f32" if kind == "fp32" else "{d}/m.bnn"
        argv = [a if a != "{d}/m.bnn" else out for a in R] + quiet(["--epochs", "2"])
        outs = M("m") if kind != "fp32" else ["m.f32", "m.json", "m.svg", "m.ckpt"]
        cases.append(Case(fam, f"resume a {kind} checkpoint", argv, 0, setup=ck(kind), outputs=outs,
                          check=train_ok(model=outs[0])))
    cases.append(Case(fam, "resume --checkpoint = resume keeps mode 600 owner 4321",
                      R + quiet(["--checkpoint", "{d}/r.ckpt", "--epochs", "2"]), 0,
                      setup=ck(mode=0o600, owner=True), outputs=["m.bnn", "m.json", "m.svg", "r.ckpt"]))
    knobs = [["--lr", "0.1"], ["--hidden", "16"], ["--recipe", "bn"], ["--seed", "2"], ["--arch", "c3x4,d10"],
             ["--bn"], ["--no-bn"], ["--batch", "8"], ["--optimizer", "adam"], ["--loss", "mse"],
             ["--schedule", "constant"], ["--ste-clip", "1"], ["--dynamic-clip", "1"], ["--input", "u8"],
             ["--padding", "same"], ["--dropout", "0.1"], ["--shift", "1"], ["--rotate", "1"],
             ["--scale", "0.1"], ["--rule", "scores"], ["--init-std", "0.1"], ["--output-scale", "1"],
             ["--validation", "100"], ["--epochs", "0"], ["--limit-train", "500"], ["--limit-test", "50"],
             ["--limit-train", "700"], ["--epochs", "-1"]]
    for k in knobs:
        cases.append(Case(fam, f"resume with {' '.join(k)}", R + quiet(k), 2, setup=ck(), needles=(k[0],)))
    full = lambda fx: fx.files["seed_ckpt"]
    corrupt = [
        ("empty checkpoint", lambda b: b""),
        ("1 byte", lambda b: b[:1]),
        ("magic only", lambda b: b[:8]),
        ("12 bytes", lambda b: b[:12]),
        ("half", lambda b: b[: len(b) // 2]),
        ("all but one byte", lambda b: b[:-1]),
        ("a byte flipped in the middle", lambda b: b[: len(b) // 2] + bytes([b[len(b) // 2] ^ 0x40]) + b[len(b) // 2 + 1 :]),
        ("a byte flipped at the end", lambda b: b[:-1] + bytes([b[-1] ^ 1])),
        ("trailing bytes", lambda b: b + b"xyz"),
        ("twice over", lambda b: b + b),
        ("header length huge", lambda b: b[:8] + b"\xff\xff\xff\xff" + b[12:]),
        ("zeros", lambda b: bytes(len(b))),
        ("text", lambda b: b"not a checkpoint\n"),
        ("version 99", lambda b: b[:8] + b"\x63" + b[9:]),
    ]
    for name, mut in corrupt:
        cases.append(Case(fam, f"resume from {name}", R + quiet([]), 1, setup=ck(mutate=mut), needles=("r.ckpt",)))
    other_inputs = [
        ("a model file", setup_files(r__ckpt=lambda fx: fx.files["seed_model"]), "{d}/r.ckpt", 1),
        ("a report", setup_files(r__ckpt=b'{"history": []}'), "{d}/r.ckpt", 1),
        ("an IDX file", setup_files(r__ckpt=lambda fx: fx.mnist_bytes["t10k-labels-idx1-ubyte"]), "{d}/r.ckpt", 1),
        ("a missing file", None, "{d}/r.ckpt", 1),
        ("a directory", sh("mkdir r.ckpt"), "{d}/r.ckpt", 1),
        ("a dangling link", sh("ln -s gone r.ckpt"), "{d}/r.ckpt", 1),
        ("/dev/null", None, "/dev/null", 1),
        ("a zero device", sh("mknod zero c 1 5"), "{d}/zero", 1),
        ("a closed descriptor", None, "/dev/fd/57", (1, 2)),
        ("an empty path", None, "", (1, 2)),
    ]
    for name, setup, path, code in other_inputs:
        argv = list(R) + quiet([])
        argv[argv.index("{d}/r.ckpt")] = path
        cases.append(Case(fam, f"resume from {name}", argv, code, setup=setup))
    argv = [a if a != "{d}/r.ckpt" else "{d}/ff" for a in R] + quiet(["--epochs", "2"])
    cases.append(Case(fam, "resume from a FIFO fed a checkpoint", argv, 0, setup=sh("mkfifo ff"),
                      fifo=[("{d}/ff", "FEED")], outputs=M(), check=train_ok()))
    resume_outputs = [
        ("-o", ["-o", "{d}/r.ckpt"]),
        ("--report", ["--report", "{d}/r.ckpt"]),
        ("--chart", ["--chart", "{d}/r.ckpt"]),
        ("-o via link", ["-o", "{d}/l"]),
        ("--report via hard link", ["--report", "{d}/h"]),
    ]
    for name, args in resume_outputs:
        argv = [a for a in R if a not in ("-o", "{d}/m.bnn")] + quiet(args)
        if args[0] != "-o":
            argv += ["-o", "{d}/m.bnn"]
        cases.append(Case(fam, f"resume with {name} onto the checkpoint", argv, 2,
                          setup=combine(ck(), sh("ln -s r.ckpt l", "ln r.ckpt h")), needles=("r.ckpt",)))
    cases.append(Case(fam, "resume with --data missing", [a if a != "{data}" else "{d}/none" for a in R] + quiet([]), 1,
                      setup=ck(), needles=("none",)))

    # Memory-estimate refusals.
    for name, args in [
        ("--hidden 65536,65536", ["--hidden", "65536,65536"]),
        ("--hidden 65536,65536,65536", ["--hidden", "65536,65536,65536"]),
        ("--batch 100000000 --recipe deep", ["--recipe", "deep", "--batch", "100000000"]),
        ("--hidden 65536 --batch 100000000", ["--hidden", "65536", "--batch", "100000000"]),
        # (A shape within the limits but of hours of work, c15x4096, is not
        # refused: it is what was asked.)
        ("--recipe cnn --batch 1000000", ["--recipe", "cnn", "--batch", "1000000"]),
    ]:
        cases.append(Case(fam, f"memory: {name}", T("--limit-train", "600", "--limit-test", "100",
                                                    "--validation", "100", "--epochs", "1") + args
                          + ["-o", "{d}/m.bnn"], 2, needles=(("needs about", "limited to"),)))
    cases.append(Case(fam, "memory: --arch c3x2048,c3x2048,d10",
                      T("--limit-train", "600", "--limit-test", "100", "--validation", "100", "--epochs", "1",
                        "--bn", "--arch", "c3x2048,c3x2048,d10", "-o", "{d}/m.bnn"), 2, needles=("c3x2048",)))

    # --progress with stderr and stdout failing.
    for prog in ("log", "bar", "none", "auto"):
        for which in ("stderr", "stdout"):
            for how in ("full", "closed", "leave"):
                argv = ["train", "--data", "{data}", "--no-fetch", "--threads", "1", "--progress", prog,
                        "--limit-train", "600", "--limit-test", "100", "--validation", "100", "--epochs", "3",
                        "--hidden", "16", "-o", "{d}/m.bnn"]
                cases.append(Case(fam, f"--progress {prog} with {which} {how}", argv, 0,
                                  stdio={which: how}, outputs=M(), check=train_ok()))
    # A model onto stdout with stdout failing.
    for how, code in (("full", 1), ("closed", 1), ("leave", (0, 1))):
        cases.append(Case(fam, f"-o /dev/stdout with stdout {how}",
                          T(*QUICK) + ["-o", "/dev/stdout", "--report", "{d}/r.json"], code,
                          stdio={"stdout": how}, outputs=["r.json"]))

    # Interrupts mid-run: old outputs intact, no temporary, exit 128+N.
    long_run = ["--limit-train", "600", "--limit-test", "100", "--validation", "100", "--epochs", "100000",
                "--hidden", "64"]
    sigs = [signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT, signal.SIGUSR1, signal.SIGALRM]
    for s in sigs:
        for delay in (0.05, 0.5, 1.2):
            cases.append(Case(fam, f"{s.name} after {delay} s", T(*long_run) + ["-o", "{d}/m.bnn"],
                              128 + s.value, sig=(s, delay),
                              setup=sh("echo OLD > m.bnn", "echo OLD > m.json", "chmod 600 m.bnn"),
                              may=["m.ckpt"]))
    cases.append(Case(fam, "SIGTERM while resuming onto the checkpoint",
                      R + quiet(["--checkpoint", "{d}/r.ckpt", "--epochs", "100000"]), 143, sig=(signal.SIGTERM, 0.8),
                      setup=ck(), may=["r.ckpt"]))
    return cases


# --------------------------------------------------------------------------
# bench and demo


def bench_json_ok(path="b.json"):
    def check(ctx, res):
        problems = []
        try:
            with open(os.path.join(ctx["d"], path)) as f:
                rep = json.load(f)
            if not rep.get("models"):
                problems.append(f"{path} lists no models")
        except (OSError, ValueError) as e:
            problems.append(f"{path} is not JSON: {e}")
        return problems
    return check


def bench_cases():
    fam = "bench"
    cases = []
    B = ["bench", "--data", "{data}", "--no-fetch", "--repeat", "1", "--single", "10", "--threads", "1"]
    model = setup_files(m__bnn=lambda fx: fx.files["seed_model"])
    # Models good and bad.
    good = [
        ("a .bnn", model, ["{d}/m.bnn"]),
        ("an .f32", setup_files(m__f32=lambda fx: fx.files["fp32_model"]), ["{d}/m.f32"]),
        ("a CNN", setup_files(c__bnn=lambda fx: fx.files["cnn_model"]), ["{d}/c.bnn"]),
        ("the same model twice", model, ["{d}/m.bnn", "{d}/m.bnn"]),
        ("a link to a model", combine(model, sh("ln -s m.bnn l")), ["{d}/l"]),
        ("a shipped model", None, ["{root}/weights/seed.bnn"]),
        ("a model with an odd name", setup_files(**{"a\x1b[31mb.bnn": lambda fx: fx.files["seed_model"]}),
         ["{d}/a\x1b[31mb.bnn"]),
    ]
    for name, setup, models in good:
        cases.append(Case(fam, f"bench {name}", B + models, 0, setup=setup, stdout_empty=False))
    seed = lambda fx: fx.files["seed_model"]
    bad = [
        ("a missing model", None, "{d}/none.bnn", 1),
        ("a directory", sh("mkdir dir.bnn"), "{d}/dir.bnn", 1),
        ("an empty file", setup_files(e__bnn=b""), "{d}/e.bnn", 1),
        ("a truncated model", setup_files(e__bnn=lambda fx: fx.files["seed_model"][:100]), "{d}/e.bnn", 1),
        ("a model with trailing bytes", setup_files(e__bnn=lambda fx: fx.files["seed_model"] + b"x"), "{d}/e.bnn", 1),
        ("a corrupt model", setup_files(e__bnn=lambda fx: fx.files["seed_model"][:500] + b"\0" * 50 + fx.files["seed_model"][550:]), "{d}/e.bnn", 1),
        ("a truncated .f32", setup_files(e__f32=lambda fx: fx.files["fp32_model"][:100]), "{d}/e.f32", 1),
        ("an .f32 magic only", setup_files(e__f32=b"\x89BNNF32\n"), "{d}/e.f32", 1),
        ("an IDX file", setup_files(e__bnn=lambda fx: fx.mnist_bytes["t10k-labels-idx1-ubyte"]), "{d}/e.bnn", 1),
        ("a checkpoint", setup_files(e__bnn=lambda fx: fx.files["seed_ckpt"]), "{d}/e.bnn", 1),
        ("text", setup_files(e__bnn=b"hello\n"), "{d}/e.bnn", 1),
        ("/dev/null", None, "/dev/null", 1),
        ("a zero device", sh("mknod zero c 1 5"), "{d}/zero", 1),
        ("a closed descriptor", None, "/dev/fd/57", 1),
        ("a dangling link", sh("ln -s gone l"), "{d}/l", 1),
        ("an empty name", None, "", (1, 2)),
    ]
    for name, setup, path, code in bad:
        needles = (path,) if path and code == 1 and "zero" not in path and "null" not in path else ()
        cases.append(Case(fam, f"bench {name}", B + [path], code, setup=setup, needles=needles))
        cases.append(Case(fam, f"bench a good model and {name}", B + ["{d}/good.bnn", path], code,
                          setup=combine(setup, setup_files(good__bnn=seed)), needles=needles))
    cases.append(Case(fam, "bench from a FIFO fed a model", B + ["{d}/ff"], 0, setup=sh("mkfifo ff"),
                      fifo=[("{d}/ff", "FEED")], stdout_empty=False))
    cases.append(Case(fam, "bench from a FIFO fed an .f32 model", B + ["{d}/ff"], 0, setup=sh("mkfifo ff"),
                      fifo=[("{d}/ff", "FEED_F32")], stdout_empty=False))
    cases.append(Case(fam, "bench from a FIFO fed text", B + ["{d}/ff"], 1, setup=sh("mkfifo ff"),
                      fifo=[("{d}/ff", b"hello\n")], needles=("ff",)))
    cases.append(Case(fam, "bench no models and no weights/", B, 1, needles=("no models",)))
    # Numbers.
    for flag, values in [
        ("--threads", [("0", 2), ("-1", 2), ("1025", 2), ("", 2), ("1,,2", 2), ("abc", 2), ("1,2", 0),
                       ("2", 0), (" 1", 0), ("1.5", 2), ("99999999999999999999", 2), ("1,0", 2)]),
        ("--repeat", [("0", 2), ("-1", 2), ("", 2), ("abc", 2), ("99999999999999999999", 2), ("2", 0),
                      ("1.5", 2), ("nan", 2)]),
        ("--single", [("0", 2), ("-1", 2), ("", 2), ("201", 2), ("200", 0), ("1", 0),
                      ("99999999999999999999", 2), ("1000000000", 2), ("nan", 2)]),
    ]:
        for v, code in values:
            argv = [a for a in B]
            i = argv.index(flag)
            argv[i + 1] = v
            argv = argv[:i] + [f"{flag}={v}"] + argv[i + 2:]
            cases.append(Case(fam, f"bench {flag}={v!r}", argv + ["{d}/m.bnn"], code, setup=model,
                              needles=(flag,) if code == 2 else (), stdout_empty=False))
    # --json and --chart onto every kind of path.
    for role, target in (("--json", "b.json"), ("--chart", "b.svg")):
        for kind in path_kinds(target, role):
            check = bench_json_ok() if role == "--json" and kind[1] is None and kind[2] == "{d}/b.json" else None
            cases.append(kind_case(fam, f"bench {role}", lambda p, role=role: B + ["{d}/m.bnn", role, p], kind,
                                   extra_setup=model, check=check))
            cases[-1].stdout_empty = False
        for f in ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"):
            cases.append(Case(fam, f"bench {role} onto the input {f}",
                              [a if a != "{data}" else "{d}/data" for a in B] + ["{d}/m.bnn", role, "{d}/data/" + f],
                              2, setup=combine(model, local_mnist), needles=(f, "input")))
        cases.append(Case(fam, f"bench {role} onto a missing MNIST file to be fetched",
                          ["bench", "--data", "{d}/data", "--repeat", "1", "--single", "10", "--threads", "1",
                           "{d}/m.bnn", role, "{d}/data/t10k-images-idx3-ubyte"],
                          2, setup=combine(model, sh("mkdir data")), needles=("input",)))
        cases.append(Case(fam, f"bench {role} onto the model", B + ["{d}/m.bnn", role, "{d}/m.bnn"], 2,
                          setup=model, needles=("m.bnn", "input")))
        cases.append(Case(fam, f"bench {role} onto a link to the model", B + ["{d}/m.bnn", role, "{d}/l"], 2,
                          setup=combine(model, sh("ln -s m.bnn l")), needles=("input",)))
        cases.append(Case(fam, f"bench {role} onto a hard link to the second model",
                          B + ["{d}/m.bnn", "{d}/n.bnn", role, "{d}/h"], 2,
                          setup=combine(model, sh("cp m.bnn n.bnn", "ln n.bnn h")), needles=("input",)))
        cases.append(Case(fam, f"bench {role} onto a train report kept 600",
                          B + ["{d}/m.bnn", role, "{d}/old"], 0,
                          setup=combine(model, sh("echo OLD > old", "chmod 600 old", f"chown {OWNER} old")),
                          outputs=["old"], stdout_empty=False))
    cases.append(Case(fam, "bench --json = --chart", B + ["{d}/m.bnn", "--json", "{d}/x", "--chart", "{d}/x"], 2,
                      setup=model, needles=("both",)))
    cases.append(Case(fam, "bench --json = --chart via link", B + ["{d}/m.bnn", "--json", "{d}/x", "--chart", "{d}/l"],
                      2, setup=combine(model, sh("ln -s x l")), needles=("both",)))
    cases.append(Case(fam, "bench --json /dev/stdout --chart /dev/stdout",
                      B + ["{d}/m.bnn", "--json", "/dev/stdout", "--chart", "/dev/stdout"], 0, setup=model,
                      stdout_empty=False))
    # stdout and stderr failing.
    for which in ("stdout", "stderr"):
        for how in ("full", "closed", "leave"):
            code = 0
            if which == "stdout" and how == "full":
                code = 1
            if which == "stdout" and how == "closed":
                code = 1  # the tables are the results: see docs/CLI.md "stdout"
            cases.append(Case(fam, f"bench with {which} {how}", B + ["{d}/m.bnn"], code, setup=model,
                              stdio={which: how}, stdout_empty=False))
            cases.append(Case(fam, f"bench --json with {which} {how}", B + ["{d}/m.bnn", "--json", "{d}/b.json"],
                              code if how != "closed" else 0, setup=model, may=["b.json"],
                              stdio={which: how}, outputs=["b.json"], check=bench_json_ok(), stdout_empty=False))
    # Data problems.
    def data_with(name=None, data=None):
        def setup(ctx, fx):
            fx.put_mnist(os.path.join(ctx["d"], "none"))
            if name:
                write(os.path.join(ctx["d"], "none", name), data(fx))
        return setup

    for name, setup, code, needles in [
        ("--data missing", None, 1, ("none",)),
        ("--data a file", sh("echo x > none"), 1, ("none",)),
        ("--data with a truncated test set",
         data_with("t10k-images-idx3-ubyte", lambda fx: fx.mnist_bytes["t10k-images-idx3-ubyte"][:1000]), 1,
         ("t10k-images",)),
        ("--data with labels for fewer images",
         data_with("t10k-labels-idx1-ubyte", lambda fx: cut_bytes(fx.mnist_bytes["t10k-labels-idx1-ubyte"], 100)), 1,
         ("label",)),
        ("--data with images as labels",
         data_with("t10k-labels-idx1-ubyte", lambda fx: fx.mnist_bytes["t10k-images-idx3-ubyte"]), 1,
         ("t10k-labels",)),
        ("--data a good copy", data_with(), 0, ()),
    ]:
        cases.append(Case(fam, f"bench {name}", [a if a != "{data}" else "{d}/none" for a in B] + ["{d}/m.bnn"],
                          code, setup=combine(model, setup), needles=needles, stdout_empty=False))
    return cases


def cut_bytes(idx_bytes, n):
    nd = idx_bytes[3]
    dims = list(struct.unpack(">" + "I" * nd, idx_bytes[4 : 4 + 4 * nd]))
    per = 1
    for d in dims[1:]:
        per *= d
    dims[0] = n
    return idx(dims, idx_bytes[4 + 4 * nd : 4 + 4 * nd + n * per])


def demo_cases():
    fam = "demo"
    cases = []
    D = ["demo", "--data", "{data}", "--no-fetch", "--repeat", "1"]
    cases.append(Case(fam, "demo on a small MNIST", D, 0, cwd="{root}", stdout_empty=False))
    for v in ("0", "-1", "", "abc", "1.5", "99999999999999999999", "nan"):
        argv = D[:-1] + [v]
        cases.append(Case(fam, f"demo --repeat={v!r}", argv, 2, cwd="{root}", needles=("--repeat",)))
    cases.append(Case(fam, "demo --data missing", ["demo", "--data", "{d}/none", "--no-fetch", "--repeat", "1"], 1,
                      cwd="{root}", needles=("none",)))
    cases.append(Case(fam, "demo --data a file", ["demo", "--data", "{d}/f", "--no-fetch", "--repeat", "1"], 1,
                      cwd="{root}", setup=sh("echo x > f"), needles=("f",)))
    cases.append(Case(fam, "demo --data truncated", ["demo", "--data", "{d}/data", "--no-fetch", "--repeat", "1"], 1,
                      cwd="{root}", setup=lambda ctx, fx: (local_mnist(ctx, fx), write(
                          os.path.join(ctx["d"], "data", "t10k-images-idx3-ubyte"),
                          fx.mnist_bytes["t10k-images-idx3-ubyte"][:5000])), needles=("t10k-images",)))
    cases.append(Case(fam, "demo without weights/", D, 1, needles=("weights",)))
    cases.append(Case(fam, "demo unknown flag", D + ["--json", "x"], 2))
    for which, how, code in [("stdout", "full", 1), ("stdout", "leave", 0), ("stdout", "closed", 1),
                             ("stderr", "full", 0)]:
        cases.append(Case(fam, f"demo with {which} {how}", D, code, cwd="{root}", stdio={which: how},
                          stdout_empty=False))
    return cases


# --------------------------------------------------------------------------
# export


def export_ok(dirname="out", name="bnn", fmt_="c", count=None):
    def check(ctx, res):
        problems = []
        d = os.path.join(ctx["d"], dirname)
        man = os.path.join(d, "manifest.txt")
        if not os.path.isfile(man):
            return [f"{dirname}/manifest.txt missing"]
        listed = set()
        with open(man) as f:
            in_files = False
            for line in f:
                if line.strip() == "files:":
                    in_files = True
                elif in_files and line.startswith("  "):
                    listed.add(line.split()[0])
        present = set(os.listdir(d))
        for want in ([f"{name}.c", f"{name}.h"] if fmt_ == "c" else [f"{name}.v", f"{name}_tb.v"]):
            if want not in present:
                problems.append(f"{dirname}/{want} missing")
        if present - {"manifest.txt"} != listed:
            problems.append(f"files {sorted(present)} but the manifest lists {sorted(listed)}")
        if count is not None:
            out = res.stdout.decode("utf-8", "replace")
            if f"testbench: {count} images" not in out:
                problems.append(f"summary does not say the testbench has {count} images: "
                                f"{[l for l in out.splitlines() if 'testbench' in l]}")
        return problems
    return check


def export_cases():
    fam = "export"
    cases = []
    model = setup_files(m__bnn=lambda fx: fx.files["seed_model"])
    E = lambda fmt_, *rest: ["export", "{d}/m.bnn", "--format", fmt_] + list(rest)
    for f in ("c", "verilog"):
        cases.append(Case(fam, f"{f}: plain", E(f, "-o", "{d}/out"), 0, setup=model, outputs=["out/*"],
                          check=export_ok(fmt_=f), stdout_empty=False))
        # Names.
        # A prefix: main_predict and NULL_predict are fine identifiers.
        names_ok = ["my_model", "A", "x1", "n" * 23, "main", "NULL"]
        names_bad = ["", "int", "for", "9abc", "a-b", "\u00fcn\u00ef", "x y", "x\n", "_x", "n" * 24, "stdio",
                     "errno", "_Bool", "restrict", "inline", "__x", "_X", "module", "wire", "reg", "begin",
                     "endmodule", "n" * 300, "assert", "bnn.c", "../x", "a/b", "while", "static", "logic",
                     "x" * 250]
        for n in names_ok:
            cases.append(Case(fam, f"{f}: --name {n!r}", E(f, "-o", "{d}/out", "--name", n), 0, setup=model,
                              outputs=["out/*"], check=export_ok(name=n, fmt_=f), stdout_empty=False))
        for n in names_bad:
            code = 2
            if f == "c" and n in ("module", "wire", "reg", "begin", "endmodule", "logic", "x" * 250):
                code = (0, 2)
            cases.append(Case(fam, f"{f}: --name {n!r}", E(f, "-o", "{d}/out", "--name", n), code, setup=model,
                              outputs=["out/*"], stdout_empty=False,
                              needles=("name",) if n in ("", "n" * 300) else ()))
        # -o onto kinds of path.
        kinds = [
            ("an empty dir", sh("mkdir out"), "{d}/out", 0, ["out/*"]),
            ("an empty dir 700 owned 4321", sh("mkdir out", "chmod 700 out", f"chown {OWNER}:{OWNER} out"),
             "{d}/out", 0, ["out/*"]),
            ("a dir with a foreign file", sh("mkdir out", "echo mine > out/notes.txt"), "{d}/out", (1, 2), []),
            ("a dir with a hidden file", sh("mkdir out", "echo mine > out/.keep"), "{d}/out", (1, 2), []),
            ("a dir with a subdir", sh("mkdir -p out/sub"), "{d}/out", (1, 2), []),
            ("a link to a dir", sh("mkdir real", "ln -s real out"), "{d}/out", 0, ["real/*"]),
            ("a link to a dir with a foreign file", sh("mkdir real", "echo x > real/x", "ln -s real out"),
             "{d}/out", (1, 2), []),
            ("a dangling link", sh("ln -s gone out"), "{d}/out", (0, 1, 2), ["gone/*"]),
            ("a link to a file", sh("echo x > f", "ln -s f out"), "{d}/out", (1, 2), []),
            ("a file", sh("echo x > out"), "{d}/out", 1, []),
            ("a missing parent", None, "{d}/no/out", 2, []),
            ("a file as parent", sh("echo x > f"), "{d}/f/out", 2, []),
            ("the model", None, "{d}/m.bnn", (1, 2), []),
            ("the case dir itself (holds the model)", None, "{d}", (1, 2), []),
            ("an empty path", None, "", 2, []),
            ("a char device", sh("mknod nul c 1 3"), "{d}/nul", (1, 2), []),
            ("a FIFO", sh("mkfifo ff"), "{d}/ff", (1, 2), []),
            ("/dev/fd/1", None, "/dev/fd/1", (1, 2), []),
            ("a trailing slash", None, "{d}/out/", 0, ["out/*"]),
            ("dot-dot", sh("mkdir sub"), "{d}/sub/../out", 0, ["out/*"]),
            ("a link loop", sh("ln -s l2 out", "ln -s out l2"), "{d}/out", (1, 2), []),
        ]
        for name, setup, path, code, outs in kinds:
            cases.append(Case(fam, f"{f}: -o onto {name}", E(f, "-o", path), code, setup=combine(model, setup),
                              outputs=outs, stdout_empty=False,
                              needles=(("no",) if name == "a missing parent" else ())))
        # --force.
        prior = sh(f"{{bnn}} export m.bnn --format {f} -o out > /dev/null")
        prior_other = sh(f"{{bnn}} export m.bnn --format {'verilog' if f == 'c' else 'c'} -o out > /dev/null")
        force = [
            ("over an earlier export", prior, 0, ["out/*"], False),
            ("over an export of the other format", prior_other, 0, ["out/*"], False),
            ("without --force over an earlier export", prior, (1, 2), [], True),
            ("with a foreign file", combine(prior, sh("echo mine > out/notes.txt")), (1, 2), [], False),
            ("with a foreign hidden file", combine(prior, sh("echo mine > out/.notes")), (1, 2), [], False),
            ("with the model inside", combine(prior, sh("mv m.bnn out/m.bnn", "ln -s out/m.bnn m.bnn")), 2, [], False),
            ("with a hard link of the model as a listed file",
             combine(prior, sh(f"rm out/bnn.{'c' if f == 'c' else 'v'}", f"ln m.bnn out/bnn.{'c' if f == 'c' else 'v'}")),
             2, [], False),
            ("with modes 600 and owner 4321 kept",
             combine(prior, sh("chmod 600 out/*", f"chown {OWNER}:{OWNER} out/*", "chmod 750 out")), 0, ["out/*"], False),
            ("with a listed file turned into a dir",
             combine(prior, sh(f"rm out/bnn.{'h' if f == 'c' else 'v'}", f"mkdir out/bnn.{'h' if f == 'c' else 'v'}")),
             (1, 2), [], False),
            ("with a listed file a link outside",
             combine(prior, sh("echo OUTSIDE > outside", f"rm out/bnn.{'c' if f == 'c' else 'v'}",
                               f"ln -s ../outside out/bnn.{'c' if f == 'c' else 'v'}")),
             (0, 1, 2), ["out/*"], False),
            ("with a manifest naming ../victim",
             combine(prior, sh("echo VICTIM > victim", "echo ../victim >> out/manifest.txt")), (0, 1, 2), ["out/*"], False),
            ("with a manifest naming /abs victim",
             combine(prior, sh("echo VICTIM > victim", "echo {d}/victim >> out/manifest.txt")), (0, 1, 2), ["out/*"], False),
            ("with an empty manifest and a file", combine(prior, sh(": > out/manifest.txt")), (1, 2), [], False),
            ("with the manifest a link outside", combine(prior, sh("mv out/manifest.txt man", "ln -s ../man out/manifest.txt")),
             (0, 1, 2), ["out/*"], False),
            ("with a FIFO named as a listed file",
             combine(prior, sh(f"rm out/bnn.{'c' if f == 'c' else 'v'}", f"mkfifo out/bnn.{'c' if f == 'c' else 'v'}")),
             (0, 1, 2), ["out/*"], False),
            ("on a new dir", None, 0, ["out/*"], False),
            ("on a link to an earlier export", combine(sh("mkdir real", "ln -s real out"),
                                                      sh(f"{{bnn}} export m.bnn --format {f} -o real > /dev/null")),
             0, ["real/*"], False),
        ]
        for name, setup, code, outs, no_force in force:
            argv = E(f, "-o", "{d}/out") + ([] if no_force else ["--force"])
            cases.append(Case(fam, f"{f}: --force {name}" if not no_force else f"{f}: {name}", argv, code,
                              setup=combine(model, setup), outputs=outs, stdout_empty=False,
                              check=export_ok(fmt_=f) if code == 0 else None))
        # stdout and stderr failing: the export is the result.
        for which, how in (("stdout", "full"), ("stdout", "closed"), ("stdout", "leave"), ("stderr", "full"),
                           ("stderr", "closed")):
            cases.append(Case(fam, f"{f}: with {which} {how}", E(f, "-o", "{d}/out"), 0, setup=model,
                              stdio={which: how}, outputs=["out/*"], check=export_ok(fmt_=f), stdout_empty=False))
        # Bad models.
        for name, setup, path, code in [
            ("missing", None, "{d}/none.bnn", 1),
            ("truncated", setup_files(t__bnn=lambda fx: fx.files["seed_model"][:99]), "{d}/t.bnn", 1),
            ("an fp32 model", setup_files(t__bnn=lambda fx: fx.files["fp32_model"]), "{d}/t.bnn", 1),
            ("a checkpoint", setup_files(t__bnn=lambda fx: fx.files["seed_ckpt"]), "{d}/t.bnn", 1),
            ("a directory", sh("mkdir t.bnn"), "{d}/t.bnn", 1),
            ("/dev/null", None, "/dev/null", 1),
            ("a zero device", sh("mknod z c 1 5"), "{d}/z", 1),
        ]:
            cases.append(Case(fam, f"{f}: model {name}", ["export", path, "--format", f, "-o", "{d}/out"], code,
                              setup=setup, needles=((path,) if code == 1 and "z" != path[-1:] and "null" not in path else ())))
        cases.append(Case(fam, f"{f}: a CNN model", ["export", "{d}/c.bnn", "--format", f, "-o", "{d}/out"],
                          0 if f == "c" else 1, setup=setup_files(c__bnn=lambda fx: fx.files["cnn_model"]),
                          outputs=["out/*"], stdout_empty=False))
        cases.append(Case(fam, f"{f}: model from a FIFO", ["export", "{d}/ff", "--format", f, "-o", "{d}/out"], 0,
                          setup=sh("mkfifo ff"), fifo=[("{d}/ff", "FEED")], outputs=["out/*"], stdout_empty=False))
    # Verilog options.
    imgs = lambda ctx, fx: write(os.path.join(ctx["d"], "imgs"), fx.mnist_bytes["t10k-images-idx3-ubyte"])
    V = E("verilog", "-o", "{d}/out")
    # A count the file cannot fill may be clamped (and the summary says so)
    # or refused.
    for v, code, count in [("0", 2, None), ("-1", 2, None), ("1", 0, 1), ("200", 0, 200), ("201", (0, 2), 200),
                           ("1000000000000", (0, 2), 200), ("99999999999999999999", 2, None), ("", 2, None),
                           ("abc", 2, None), ("1.5", 2, None)]:
        cases.append(Case(fam, f"verilog: --test-count={v!r} with 200 images",
                          V + ["--test-images", "{d}/imgs", f"--test-count={v}"], code, setup=combine(model, imgs),
                          outputs=["out/*"], check=export_ok(fmt_="verilog", count=count), stdout_empty=False,
                          needles=("--test-count",) if code == 2 else ()))
    cases.append(Case(fam, "verilog: --test-count 5 without --test-images", V + ["--test-count", "5"], 2,
                      setup=model, needles=("--test-count",)))
    cases.append(Case(fam, "c: --test-count 5", E("c", "-o", "{d}/out", "--test-count", "5"), 2,
                      setup=model, needles=("--test-count",)))
    for v, code in [("0", 2), ("-1", 2), ("1", 0), ("2", 0), ("3", 0), ("8", 0), ("13", (0, 2)),
                    ("1000000", (0, 2)), ("4294967296", 2), ("", 2), ("abc", 2)]:
        cases.append(Case(fam, f"verilog: --parallel={v!r}", V + [f"--parallel={v}"], code, setup=model,
                          outputs=["out/*"], check=export_ok(fmt_="verilog") if code == 0 else None,
                          stdout_empty=False, needles=("--parallel",) if code == 2 else ()))
    cases.append(Case(fam, "c: --parallel 2", E("c", "-o", "{d}/out", "--parallel", "2"), 2, setup=model,
                      needles=("--parallel",)))
    cases.append(Case(fam, "c: --test-images", E("c", "-o", "{d}/out", "--test-images", "{d}/imgs"), 2,
                      setup=combine(model, imgs), needles=("--test-images",)))
    ti = [
        ("labels", lambda ctx, fx: write(os.path.join(ctx["d"], "imgs"), fx.mnist_bytes["t10k-labels-idx1-ubyte"]), 1),
        ("truncated", lambda ctx, fx: write(os.path.join(ctx["d"], "imgs"), fx.mnist_bytes["t10k-images-idx3-ubyte"][:2000]), 1),
        ("trailing bytes", lambda ctx, fx: write(os.path.join(ctx["d"], "imgs"), fx.mnist_bytes["t10k-images-idx3-ubyte"] + b"xx"), 1),
        ("14x14 images", lambda ctx, fx: write(os.path.join(ctx["d"], "imgs"), idx([3, 14, 14], bytes(3 * 196))), 1),
        ("zero images", lambda ctx, fx: write(os.path.join(ctx["d"], "imgs"), idx([0, 28, 28], b"")), (1, 2)),
        ("missing", None, 1),
        ("a directory", sh("mkdir imgs"), 1),
        ("a zero device", sh("mknod imgs c 1 5"), 1),
    ]
    for name, setup, code in ti:
        cases.append(Case(fam, f"verilog: --test-images {name}", V + ["--test-images", "{d}/imgs"], code,
                          setup=combine(model, setup), needles=("imgs",) if name != "zero images" else ()))
    cases.append(Case(fam, "verilog: --test-images inside the --force dir",
                      V + ["--force", "--test-images", "{d}/out/imgs"], 2,
                      setup=combine(model, sh("{bnn} export m.bnn --format verilog -o out > /dev/null"),
                                    lambda ctx, fx: write(os.path.join(ctx["d"], "out", "imgs"),
                                                          fx.mnist_bytes["t10k-images-idx3-ubyte"]))))
    cases.append(Case(fam, "verilog: --test-images is a listed file of the --force dir",
                      V + ["--force", "--test-images", "{d}/out/bnn_tb_pixels.hex"], 2,
                      setup=combine(model, sh("{bnn} export m.bnn --format verilog -o out > /dev/null"),
                                    lambda ctx, fx: write(os.path.join(ctx["d"], "out", "bnn_tb_pixels.hex"),
                                                          fx.mnist_bytes["t10k-images-idx3-ubyte"])),
                      needles=("bnn_tb_pixels.hex", "input")))
    cases.append(Case(fam, "verilog: --test-images from a FIFO", V + ["--test-images", "{d}/ff"], 0,
                      setup=combine(model, sh("mkfifo ff")), fifo=[("{d}/ff", "IMAGES")], outputs=["out/*"],
                      stdout_empty=False))
    for wb in ("32", "64"):
        cases.append(Case(fam, f"c: --word-bits {wb}", E("c", "-o", "{d}/out", "--word-bits", wb), 0, setup=model,
                          outputs=["out/*"], check=export_ok(), stdout_empty=False))
    for wb in ("16", "0", "", "-64"):
        cases.append(Case(fam, f"c: --word-bits {wb!r}", E("c", "-o", "{d}/out", f"--word-bits={wb}"), 2, setup=model,
                          needles=("--word-bits",)))
    cases.append(Case(fam, "--format missing", ["export", "{d}/m.bnn", "-o", "{d}/out"], 2, setup=model))
    cases.append(Case(fam, "--format cpp", E("cpp", "-o", "{d}/out"), 2, setup=model, needles=("--format",)))
    cases.append(Case(fam, "-o missing", E("c"), 2, setup=model))
    return cases


# --------------------------------------------------------------------------


def fifo_bytes(case, fx):
    """What a FIFO case feeds: filled in here, once the fixtures exist."""
    out = []
    for path, what in case.fifo:
        if what == "FEED_F32":
            what = fx.files["fp32_model"]
        elif what == "FEED":
            what = fx.files["seed_ckpt"] if case.fam == "train" else fx.files["seed_model"]
        elif what == "IMAGES":
            what = fx.mnist_bytes["t10k-images-idx3-ubyte"]
        out.append((path, what))
    case.fifo = out


def tree_hash(paths):
    h = hashlib.sha256()
    for top in paths:
        for dirpath, dirnames, filenames in sorted(os.walk(top)):
            for name in sorted(filenames):
                p = os.path.join(dirpath, name)
                h.update(p.encode())
                h.update(read(p))
    return h.hexdigest()


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bnn", default=os.path.join(ROOT, "target", "release", "bnn"))
    ap.add_argument("-k", default="", help="run only cases whose family: name contains this")
    ap.add_argument("-v", action="store_true", help="print every case")
    args = ap.parse_args()
    bnn = os.path.abspath(args.bnn)
    if not os.access(bnn, os.X_OK):
        sys.exit(f"{bnn}: not found; build with cargo build --release")
    if os.geteuid() != 0:
        sys.exit("run as root: the cases make devices (mknod) and chown files")
    os.umask(0o022)
    top = tempfile.mkdtemp(prefix="bnn-hostile-fixtures-")
    try:
        fx = Fixtures(bnn, top)
        shared = [fx.data, os.path.join(ROOT, "weights")]
        shared_before = tree_hash(shared)
        cases = train_cases() + bench_cases() + demo_cases() + export_cases()
        cases = [c for c in cases if args.k in f"{c.fam}: {c.name}"]
        tally = {}
        wrong = []
        started = time.time()
        for c in cases:
            fifo_bytes(c, fx)
            res, problems = run_case(bnn, fx, c)
            fam = tally.setdefault(c.fam, [0, 0])
            fam[0] += 1
            if problems:
                fam[1] += 1
                wrong.append((c, res, problems))
            if args.v:
                print(f"{'WRONG' if problems else 'ok   '} {c.fam}: {c.name} "
                      f"(exit {res.code if res else '?'}, {res.seconds if res else 0:.2f} s)", flush=True)
        if tree_hash(shared) != shared_before:
            wrong.append((Case("global", "shared inputs", [], 0), None,
                          ["the shipped models or the shared MNIST copy changed"]))
            tally.setdefault("global", [0, 0])
            tally["global"][0] += 1
            tally["global"][1] += 1
        for c, res, problems in wrong:
            cmd = " ".join(repr(a) if (not a or " " in a) else a for a in c.argv)
            print(f"WRONG {c.fam}: {c.name}\n  bnn {cmd}\n  exit {res.code if res else '?'}; "
                  f"stderr: {first_line(res)[:300]!r}")
            for p in problems:
                print(f"  - {p}")
        for fam, (n, bad) in tally.items():
            print(f"{fam}: {n} cases, {bad} wrong")
        total = sum(n for n, _ in tally.values())
        failed = sum(b for _, b in tally.values())
        print(f"({time.time() - started:.0f} s)")
        print(f"{total - failed} passed, {failed} failed")
        sys.exit(1 if failed else 0)
    finally:
        shutil.rmtree(top, ignore_errors=True)


if __name__ == "__main__":
    main()
