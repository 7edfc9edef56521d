#!/bin/bash
# Build what a bare Python 3.12 + CUDA torch machine needs to run the GPU check (.ci/gpu-check.sh), in
# .whl/, .gl/ and .device/ (ignored by git; carry them to the machine): cp312 wheels of the compiled
# dependencies and of this package, the pure-Python dependencies copied from .venv (robosuite trimmed to
# the assets the Lift scenes load: its wheel is 157 MB), and the EGL loader packages.
# Usage, from the repository root, with the project's .venv set up:  bash .ci/gpu-bundle.sh
set -euo pipefail
ROOT=$(pwd)
PY=$ROOT/.venv/bin/python
SP=$($PY -c "import sysconfig; print(sysconfig.get_paths()['purelib'])")
mkdir -p .git/info .whl .gl .device
for d in /.whl/ /.gl/ /.device/; do grep -qxF "$d" .git/info/exclude 2>/dev/null || echo "$d" >> .git/info/exclude; done
rm -f .whl/*.whl
PLAT="--platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_24_x86_64 \
  --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 --platform any"
for p in mujoco fast_simplification arch wcwidth glfw; do
  v=$($PY -c "import importlib.metadata as m; print(m.version('$p'))")
  $PY -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp $PLAT -d .whl "$p==$v"
done
$PY -m pip wheel -q --no-deps --no-build-isolation -w .whl .
# The files the Lift scenes load (train and held-out categories, both cameras), from the compiled XML.
$PY - <<'PY' > /tmp/robosuite_assets.txt
import os, re, gymnasium as gym, robosuite, safeadapt_bench  # noqa: F401
paths = set()
for env_id in ("SafeAdapt/Lift-v0", "SafeAdapt/Lift-Heldout-v0"):
    env = gym.make(env_id, obs_mode="rgbd", camera_size=64, cameras=("front", "wrist"))
    for seed in range(12):
        env.reset(seed=seed)
        paths.update(re.findall(r'file="([^"]+)"', env.unwrapped.scene.model.get_xml()))
    env.close()
root = os.path.dirname(os.path.dirname(robosuite.__file__))
print("\n".join(sorted(os.path.relpath(p, root) for p in paths)))
PY
cd "$SP"
{ find robosuite -path robosuite/models/assets -prune -o -type f ! -name "*.pyc" -print
  find robosuite/models/assets -type f \( -name "*.xml" -o -name "*.py" \)
  cat /tmp/robosuite_assets.txt
  find gymnasium farama_notifications stable_baselines3 open_clip ftfy minari rliable termcolor OpenGL -type f ! -name "*.pyc"
  ls -d gymnasium-*.dist-info farama_notifications-*.dist-info stable_baselines3-*.dist-info open_clip_torch-*.dist-info \
     ftfy-*.dist-info minari-*.dist-info rliable-*.dist-info termcolor-*.dist-info [Pp]y[Oo]pen[Gg][Ll]-*.dist-info \
     robosuite-*.dist-info | xargs -I{} find {} -type f
} | grep -v __pycache__ > /tmp/pylib_files.txt
tar -cJf "$ROOT/.device/pylib.tar.xz" -T /tmp/pylib_files.txt
cd "$ROOT/.gl"
o='-oAPT::Architecture=amd64 -oAPT::Architectures=amd64 -oDir::State::Lists=/tmp/amd64'
mkdir -p /tmp/amd64/partial
apt-get $o update -qq >/dev/null && apt-get $o download -qq libvulkan1 libegl1 libglvnd0 libopengl0 libgl1 libglx0 libgles2
cd "$ROOT"
du -sh .whl .gl .device
