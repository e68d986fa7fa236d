#!/usr/bin/env bash
# The follower on a GPU machine that has JAX and PyTorch but no TensorFlow: `benchmarks.backends` under
# KERAS_BACKEND=jax (about 90 s), then torch (more: it compiles the network at start-up) while the time budget
# allows. Each measures the network alone and the real server over the loopback: a 200-frame synthetic flight
# played by `sim_bridge.replay` at 5 frames/s, then back to back.
#
#     bash benchmarks/gpu_backends.sh [BUDGET_S]        # default 220 s; results in $OUT (default ./gpu-results)
#
# Keras and the server's small dependencies come as wheels from .gpu/serve-whl (ignored by git; carry it along),
# installed into /tmp/site. The folder used on 2026-11-26 (Python 3.12 there), made here with
#     pip download --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
#         --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
#         -d .gpu/serve-whl keras==3.15.1 namex==0.1.0 optree==0.20.0 absl-py h5py rich markdown-it-py mdurl \
#         pygments typing-extensions eventlet==0.41.3 greenlet==3.5.6 dnspython python-socketio==5.18.1 \
#         python-engineio==4.15.1 simple-websocket wsproto h11 bidict flask==3.1.3 werkzeug click jinja2 \
#         markupsafe itsdangerous blinker prometheus-client websocket-client filterpy==2.0.0
# stderr.txt, and BACKEND.json and BACKEND-server.log per backend measured. A backend still running when the budget
# is spent is interrupted (SIGINT, so that it stops its server).
set -uo pipefail
cd "$(dirname "$0")/.."
budget_s=${1:-220}
out=${OUT:-gpu-results}
mkdir -p "$out"
python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/site .gpu/serve-whl/*.whl 2>>"$out/stderr.txt"
export PYTHONPATH="/tmp/site:$PWD"
export PYTHONUNBUFFERED=1
{
    nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader
    KERAS_BACKEND=jax python3 -c 'import jax, keras, torch; print(f"jax {jax.__version__} {jax.devices()}; torch {torch.__version__} cuda {torch.cuda.is_available()}; keras {keras.__version__}")'
} >"$out/about.txt" 2>>"$out/stderr.txt"
for backend in jax torch; do
    left=$((budget_s - SECONDS))
    if ((left < 100)); then
        echo "$backend: not measured, ${left} s of the budget left" >>"$out/results.md"
        continue
    fi
    echo "## $backend" >>"$out/results.md"
    KERAS_BACKEND=$backend timeout -s INT -k 10 "$left" python3 -m benchmarks.backends --out "$out" \
        >>"$out/results.md" 2>>"$out/stderr.txt" || echo "$backend: failed or timed out (stderr.txt)" >>"$out/results.md"
    echo >>"$out/results.md"
done
cat "$out/about.txt" "$out/results.md"
echo "total ${SECONDS} s"
