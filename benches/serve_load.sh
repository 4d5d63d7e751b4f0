#!/usr/bin/env bash
# Load runs of `bnn serve` against its peer (FastAPI + uvicorn + ONNX Runtime
# on the FP32 twin), on loopback, with the load generator in
# benches/serve_load.rs. Every figure is one JSON line on stdout.
#
#   benches/serve_load.sh                 # 10 s per run
#   DURATION=30 benches/serve_load.sh     # longer runs
#   SOAK=600 benches/serve_load.sh        # and a 10-minute soak at c=64
#   PEER=0 benches/serve_load.sh          # without the peer
#   benches/serve_load.sh soak            # the soak alone: c=64 for 600 s
#
# Runs:
#   1. single-image JSON requests, mnist-512.bnn, c = 1, 16, 64, 256
#   2. the same against the peer (2 uvicorn workers), same generator
#   3. batch .npy requests of 1,000 images at c = 4, mnist-cnn-small.bnn,
#      beside `bnn bench` on the same model and threads
#   4. (SOAK > 0, or `soak`) c = 64 for SOAK seconds, mnist-512.bnn: the
#      errors, and the server's resident memory over the second minute
#      against the last minute (flat: within 10 %). Exits 1 if either fails.
set -euo pipefail
cd "$(dirname "$0")/.."

MODE=${1:-all}
case "$MODE" in
    all) SOAK=${SOAK:-0} ;;
    soak) SOAK=${SOAK:-600} ;;
    *) echo "usage: benches/serve_load.sh [soak]" >&2; exit 2 ;;
esac
DURATION=${DURATION:-10}
PEER=${PEER:-1}
PEER_PORT=${PEER_PORT:-18090}
CONCURRENCY=${CONCURRENCY:-"1 16 64 256"}
THREADS=${THREADS:-$(nproc)}
WORK=target/serve-load
mkdir -p "$WORK"

cargo build --release --quiet
# The generator uses only std: rustc builds it in seconds, where
# `cargo bench` would first build every dev-dependency in release mode.
rustc -O --edition 2021 benches/serve_load.rs -o "$WORK/serve_load"
load() { "$WORK/serve_load" "$@"; }

# Request bodies from the MNIST test set (data/mnist, `bnn fetch`).
python3 - "$WORK" <<'EOF'
import json, struct, sys
work = sys.argv[1]
with open("data/mnist/t10k-images-idx3-ubyte", "rb") as f:
    data = f.read()
n, rows, cols = struct.unpack_from(">III", data, 4)
pixels = data[16:]
one = list(pixels[:784])
with open(f"{work}/one.json", "w") as f:
    json.dump({"images": [one]}, f)
d = "{'descr': '|u1', 'fortran_order': False, 'shape': (1000, 28, 28), }"
d += " " * ((64 - (10 + len(d) + 1) % 64) % 64) + "\n"
with open(f"{work}/batch.npy", "wb") as f:
    f.write(b"\x93NUMPY\x01\x00" + struct.pack("<H", len(d)) + d.encode() + pixels[:1000 * 784])
EOF

mkdir -p "$WORK/models"
ln -sf "$PWD/weights/mnist-512.bnn" "$WORK/models/mnist-512.bnn"
ln -sf "$PWD/weights/mnist-cnn-small.bnn" "$WORK/models/mnist-cnn-small.bnn"

# The server's access log keeps every answer but the 200s (a soak answers
# millions).
: > "$WORK/serve.log"
target/release/bnn serve "$WORK/models" --bind 127.0.0.1:0 --threads "$THREADS" \
    2> >(grep --line-buffered -v '" 200 ' > "$WORK/serve.log") &
SERVER=$!
PEER_PID=
cleanup() {
    kill "$SERVER" 2>/dev/null || true
    [ -n "$PEER_PID" ] && kill -- "-$PEER_PID" 2>/dev/null || true
}
trap cleanup EXIT
for _ in $(seq 100); do
    ADDR=$(grep -o 'listening on http://[0-9.:]*' "$WORK/serve.log" | sed 's/.*http:\/\///' || true)
    [ -n "$ADDR" ] && break
    sleep 0.1
done
[ -n "$ADDR" ] || { echo "bnn serve did not start:"; cat "$WORK/serve.log"; exit 1; }
echo "# bnn serve on $ADDR, $THREADS engine threads, $(nproc) cores; load average $(cut -d' ' -f1-3 /proc/loadavg)"

if [ "$MODE" = all ]; then
echo "# 1. bnn serve, mnist-512.bnn, single-image JSON"
for c in $CONCURRENCY; do
    printf 'bnn-serve single %s ' "$c"
    load --url "http://$ADDR/v1/models/mnist-512/classify" --body "$WORK/one.json" \
        --concurrency "$c" --duration "$DURATION"
done

if [ "$PEER" = 1 ]; then
    echo "# 2. peer: FastAPI + uvicorn (2 workers) + ONNX Runtime, FP32 twin of mnist-512.bnn"
    setsid python3 benches/peers/fastapi_ort.py weights/mnist-512.bnn --port "$PEER_PORT" \
        > "$WORK/peer.log" 2>&1 &
    PEER_PID=$!
    up=
    for _ in $(seq 1200); do
        if curl -sf "http://127.0.0.1:$PEER_PORT/healthz" > /dev/null 2>&1; then up=1; break; fi
        kill -0 "$PEER_PID" 2>/dev/null || break
        sleep 0.5
    done
    if [ -z "$up" ]; then
        echo "# the peer did not start (not measured):"; tail -5 "$WORK/peer.log"
    else
        for c in $CONCURRENCY; do
            printf 'peer single %s ' "$c"
            load --url "http://127.0.0.1:$PEER_PORT/v1/models/mnist-512/classify" \
                --body "$WORK/one.json" --concurrency "$c" --duration "$DURATION"
        done
        kill -- "-$PEER_PID" 2>/dev/null || true
        wait "$PEER_PID" 2>/dev/null || true
        PEER_PID=
    fi
fi

echo "# 3. batch .npy of 1,000 images at c=4, mnist-cnn-small.bnn, beside bnn bench"
printf 'bnn-serve batch 4 '
load --url "http://$ADDR/v1/models/mnist-cnn-small/classify" --body "$WORK/batch.npy" \
    --content-type application/x-npy --images 1000 --concurrency 4 --duration "$DURATION"
target/release/bnn bench weights/mnist-cnn-small.bnn --threads "$THREADS" --repeat 3 \
    --single 1 --json "$WORK/bench.json" --no-fetch > "$WORK/bench.txt"
python3 - "$WORK/bench.json" "$THREADS" <<'EOF'
import json, sys
report = json.load(open(sys.argv[1]))
threads = int(sys.argv[2])
rows = [r for r in report["throughput"] if r["engine"] == "1-bit" and r["threads"] == threads]
# The first row is the default kernel's (the server's); the others are
# slower kernels bench also times.
for r in rows[:1]:
    model, kernel, rate = r["model"], r.get("kernel"), r["images_per_s"]
    print(f'bnn-bench batch {threads} {{"model": "{model}", "kernel": "{kernel}", "images_per_s": {rate:.0f}}}')
if not rows:
    print("# bnn bench: no 1-bit batch figure in", sys.argv[1])
EOF
fi

SOAK_FAILED=
if [ "$SOAK" -gt 0 ]; then
    echo "# 4. soak: c=64 for $SOAK s, mnist-512.bnn, resident memory of the server"
    printf 'bnn-serve soak 64 '
    load --url "http://$ADDR/v1/models/mnist-512/classify" --body "$WORK/one.json" \
        --concurrency 64 --duration "$SOAK" --rss-pid "$SERVER" | tee "$WORK/soak.json"
    python3 - "$WORK/soak.json" <<'EOF' || SOAK_FAILED=1
import json, sys
r = json.load(open(sys.argv[1]))
early, late = r["rss_early_kib"], r["rss_late_kib"]
minutes = r["seconds"] >= 180
change = (late - early) / early * 100
flat = abs(change) <= 10
print(f"# soak: {r['ok']} answered, {r['errors']} errors; resident memory "
      f"{early:.0f} KiB over the {'second minute' if minutes else 'second tenth'}, "
      f"{late:.0f} KiB over the {'last minute' if minutes else 'last tenth'} ({change:+.1f} %): "
      f"{'flat' if flat else 'NOT flat'} (limit 10 %)")
sys.exit(0 if flat and r["errors"] == 0 else 1)
EOF
fi

kill -TERM "$SERVER"
wait "$SERVER" && echo "# bnn serve drained and exited 0"
echo "# errors and non-200 answers logged by the server: $(grep -c '" [1-5][0-9][0-9] ' "$WORK/serve.log" || true)"
if [ -n "$SOAK_FAILED" ]; then
    echo "# soak FAILED: errors, or resident memory not flat"
    exit 1
fi
