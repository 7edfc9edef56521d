#!/bin/bash
# The GPU check (issue 11), run on a machine with python3.12, CUDA torch and an NVIDIA driver, from the
# repository root with .whl/, .gl/ and .device/ built by .ci/gpu-bundle.sh: the standard suite's Lift cell, the
# four reference agents at once on one GPU (results/standard-gpu/suite.toml). Writes logs and the results to $OUT.
set -o pipefail
REPO=$PWD
T0=$(date +%s)
stamp() { echo "[t=$(( $(date +%s) - T0 ))s] $*"; }
for f in .gl/*.deb; do dpkg -x $f /; done; ldconfig
export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
export __EGL_VENDOR_LIBRARY_FILENAMES=/usr/local/nvidia/share/glvnd/egl_vendor.d/10_nvidia.json
mkdir -p /tmp/site && tar -xJf .device/pylib.tar.xz -C /tmp/site || exit 1
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
export PYTHONPATH=/tmp/site MUJOCO_GL=egl PYOPENGL_PLATFORM=egl PYTHONUNBUFFERED=1
export SAFEADAPT_CACHE=/tmp/cache MINARI_DATASETS_PATH=/tmp/minari
cd /tmp
stamp installed
nvidia-smi -L; nproc; python3 -c "import torch, numpy, pandas; print('torch', torch.__version__, torch.cuda.is_available(), 'numpy', numpy.__version__, 'pandas', pandas.__version__)"
timeout 90 python3 - <<'PY' 2>&1 | tee $OUT/render.log
import time, gymnasium as gym, numpy as np, safeadapt_bench
for cams in (("front",), ("front", "wrist")):
    env = gym.make("SafeAdapt/Lift-v0", obs_mode="rgbd", camera_size=84, cameras=cams)
    obs, _ = env.reset(seed=0)
    t = time.perf_counter(); n = 200
    for i in range(n):
        obs, r, term, trunc, info = env.step(env.action_space.sample())
        if term or trunc: env.reset()
    dt = (time.perf_counter() - t) / n
    print(f"render check {cams}: {1000 * dt:.2f} ms/step, rgb mean {obs['rgb'].mean():.1f}", flush=True)
    env.close()
import os; print("MUJOCO_GL", os.environ.get("MUJOCO_GL"))
PY
stamp render-checked
timeout ${RUN_S:-450} python3 -m safeadapt_bench run --config $REPO/results/standard-gpu/suite.toml --results /tmp/sg \
  --workers 4 --device cuda --no-report 2>&1 | tee $OUT/run.log
echo "run rc=$?"
stamp run-done
nvidia-smi --query-gpu=name,memory.used,utilization.gpu --format=csv
tar -czf $OUT/standard-gpu.tgz -C /tmp sg 2>/dev/null; ls -la $OUT
stamp end
