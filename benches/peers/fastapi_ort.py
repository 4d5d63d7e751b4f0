#!/usr/bin/env python3
"""The peer of `bnn serve`: FastAPI + uvicorn (2 workers) serving a model's
FP32 twin through ONNX Runtime, the way a user would write it, with the
same API as `bnn serve` for JSON bodies:

    POST /v1/models/{name}/classify   {"images": [[u8, ...], ...]}
    -> {"model": name, "classes": [...], "scores": [[...], ...]}

The ONNX graph is the one benches/peers/onnxruntime.py builds from an `.f32`
file (exactly what the FP32 engine computes, uint8 pixels in). A `.bnn`
model's FP32 twin is written first with `cargo run --example twin`.

Run (benches/serve_load.sh does this):

    python3 benches/peers/fastapi_ort.py weights/mnist-512.bnn --port 8090

The script makes its own venv (target/peers-venv-serve) with FastAPI,
uvicorn, NumPy, onnx and ONNX Runtime on first use, and re-runs itself in it.
"""

import argparse
import importlib.util
import os
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
VENV = os.path.join(ROOT, "target", "peers-venv-serve")
PACKAGES = ["fastapi==0.115.12", "uvicorn==0.34.2", "numpy==2.4.6", "onnx==1.23.2",
            "onnxruntime==1.32.0"]


def fail(message, code=1):
    print(f"fastapi_ort.py: {message}", file=sys.stderr)
    sys.exit(code)


def ensure_venv():
    """Re-executes this script in its venv, creating the venv first."""
    python = os.path.join(VENV, "bin", "python")
    if os.path.abspath(sys.prefix) == os.path.abspath(VENV):
        return
    if not os.path.exists(python):
        print(f"fastapi_ort.py: creating {VENV}", file=sys.stderr)
        if subprocess.run([sys.executable, "-m", "venv", VENV]).returncode != 0:
            fail(f"cannot create the venv {VENV}")
        pip = subprocess.run([python, "-m", "pip", "install", "--quiet", *PACKAGES])
        if pip.returncode != 0:
            fail(f"cannot install {' '.join(PACKAGES)} into {VENV}")
    os.execv(python, [python, os.path.abspath(__file__), *sys.argv[1:]])


def load_graph_builder():
    """benches/peers/onnxruntime.py, under another module name (its own
    name would shadow the onnxruntime package)."""
    spec = importlib.util.spec_from_file_location("bnn_ort_peer", os.path.join(HERE, "onnxruntime.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def model_bytes(path):
    """The serialised ONNX graph of `path` (an .f32, or a .bnn's twin)."""
    peer = load_graph_builder()
    with tempfile.TemporaryDirectory() as tmp:
        f32 = path
        if not path.endswith(".f32"):
            f32 = os.path.join(tmp, os.path.basename(path) + ".f32")
            twin = subprocess.run(
                ["cargo", "run", "--quiet", "--release", "-p", "bnn-fp32", "--example", "twin",
                 "--", path, f32], cwd=ROOT)
            if twin.returncode != 0:
                fail(f"{path}: cannot write its FP32 twin")
        model = peer.read_f32(f32)
        return peer.to_onnx(model, u8_input=True).SerializeToString()


def import_ort():
    """The onnxruntime package, not onnxruntime.py beside this file (this
    directory stays on sys.path: uvicorn's workers import this module from
    it)."""
    saved = sys.path[:]
    sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != HERE]
    try:
        import onnxruntime
    finally:
        sys.path[:] = saved
    return onnxruntime


def make_app(onnx_path, name):
    import numpy as np
    ort = import_ort()
    from fastapi import FastAPI, HTTPException
    from pydantic import BaseModel

    opts = ort.SessionOptions()
    # Two workers on two cores: one thread each, as a user would set it.
    opts.intra_op_num_threads = 1
    opts.inter_op_num_threads = 1
    sess = ort.InferenceSession(onnx_path, opts, providers=["CPUExecutionProvider"])
    input_len = sess.get_inputs()[0].shape[1]
    app = FastAPI()

    class Body(BaseModel):
        images: list[list[int]]

    @app.post("/v1/models/{model}/classify")
    def classify(model: str, body: Body):
        if model != name:
            raise HTTPException(404, f"no model named {model!r}")
        pixels = np.asarray(body.images, dtype=np.uint8)
        if pixels.ndim != 2 or pixels.shape[1] != input_len:
            raise HTTPException(400, f"images of {input_len} values expected")
        scores = sess.run(None, {"pixels": pixels})[0]
        return {"model": name, "classes": scores.argmax(axis=1).tolist(),
                "scores": scores.tolist()}

    @app.get("/healthz")
    def healthz():
        return {"status": "ok"}

    return app


# uvicorn's workers import this module and take `app` from it.
if os.environ.get("BNN_PEER_ONNX"):
    app = make_app(os.environ["BNN_PEER_ONNX"], os.environ["BNN_PEER_NAME"])


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("model", help=".bnn (its FP32 twin is served) or .f32 model")
    ap.add_argument("--port", type=int, default=8090)
    ap.add_argument("--workers", type=int, default=2)
    args = ap.parse_args()
    ensure_venv()
    import uvicorn

    name = os.path.splitext(os.path.basename(args.model))[0]
    with tempfile.TemporaryDirectory() as tmp:
        onnx_path = os.path.join(tmp, name + ".onnx")
        with open(onnx_path, "wb") as f:
            f.write(model_bytes(args.model))
        os.environ["BNN_PEER_ONNX"] = onnx_path
        os.environ["BNN_PEER_NAME"] = name
        uvicorn.run("fastapi_ort:app", app_dir=HERE, host="127.0.0.1", port=args.port,
                    workers=args.workers, log_level="warning", access_log=False)


if __name__ == "__main__":
    main()
