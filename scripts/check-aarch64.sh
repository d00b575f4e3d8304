#!/usr/bin/env bash
# Prove the clinic install on aarch64 (Raspberry Pi OS 64-bit = Debian bookworm, Python 3.11)
# without a Pi. For each edge extra the project's wheel and its dependencies are resolved and
# installed the way a clinic installs them (pip, binary wheels only, for aarch64), and the real
# `pneumoscan info` / `pneumoscan predict` run as aarch64 code under qemu-user on Debian's own
# arm64 python3.11. Their output must equal an x86 run of the same wheel and runtime (a host
# venv), probabilities to 1e-6. docs/raspberry-pi.md says what this proves and what it does not.
#
# Usage: scripts/check-aarch64.sh [MODEL.tflite|installed ...]
#   Default models: tests/data/tiny-int8.tflite, plus `installed` (the model the wheel ships,
#   run without --model) when edge_app/models/pneumoscan-int8.tflite exists.
# Environment:
#   PNEUMOSCAN_AARCH64_MODELS  models when no argument is given (space-separated)
#   PNEUMOSCAN_AARCH64_CACHE   downloads, sysroot, installs and the last run's files
#                              (default ${XDG_CACHE_HOME:-$HOME/.cache}/pneumoscan-aarch64);
#                              delete it to pick up new upstream releases
#   PNEUMOSCAN_AARCH64_EXTRAS  extras to prove (default "edge edge-legacy")
#   PNEUMOSCAN_AARCH64_SERVE   1 (default): also install .[edge,serve] and have the emulated
#                              web server answer one POST /api/screen; 0 skips it
#   PNEUMOSCAN_AARCH64_CPUS    qemu CPU models (default "cortex-a72 cortex-a76": Pi 4 and Pi 5)
#   PNEUMOSCAN_HOST_PYTHON     host interpreter for pip, the wheel build and the x86 reference
#                              (default python3)
# Exit: 0 proven, or skipped with a printed SKIP line because apt or PyPI is unreachable;
#       1 anything else. Needs root for apt and for the mount namespace LiteRT runs in.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cache=${PNEUMOSCAN_AARCH64_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/pneumoscan-aarch64}
read -r -a extras <<<"${PNEUMOSCAN_AARCH64_EXTRAS:-edge edge-legacy}"
read -r -a cpus <<<"${PNEUMOSCAN_AARCH64_CPUS:-cortex-a72 cortex-a76}"
host_python=${PNEUMOSCAN_HOST_PYTHON:-python3}
tolerance=1e-6
shipped_model=edge_app/models/pneumoscan-int8.tflite

# The clinic device's userland: Debian bookworm arm64, python3.11 and the libraries its
# interpreter and stdlib extension modules link against (checked below by importing each one).
debs=(python3.11-minimal libpython3.11-minimal libpython3.11-stdlib
  libc6 libgcc-s1 libstdc++6 libssl3 zlib1g libffi8 libexpat1 libbz2-1.0 liblzma5 libsqlite3-0
  libcrypt1 libuuid1 libncursesw6 libtinfo6 libreadline8 libdb5.3 libnsl2 libtirpc3
  libgssapi-krb5-2 libkrb5-3 libk5crypto3 libkrb5support0 libcom-err2 libkeyutils1)

debdir=$cache/debs sysroot=$cache/sysroot installs=$cache/installs logs=$cache/logs run=$cache/run
started=$(date +%s.%N)

say() { printf '\n== %s  [%s s]\n' "$*" "$(seconds_since "$started")"; }
die() { printf '\ncheck-aarch64: FAIL: %s\n' "$*" >&2; exit 1; }
skip() { printf '\ncheck-aarch64: SKIP: %s\n' "$*"; exit 0; }
seconds_since() { awk -v a="$1" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }'; }
trap 'die "unexpected failure (exit $?) at line $LINENO: $BASH_COMMAND"' ERR

# A failing apt/pip step is a skip only when its log shows the registry could not be reached.
unreachable='Temporary failure (in name resolution|resolving)|Could not resolve|Name or service not known|Failed to establish a new connection|NewConnectionError|ConnectTimeout|Connection (timed out|refused|failed)|Network is unreachable|No route to host|Could not connect|Unable to connect|ProxyError'
apt_unreachable=""
net() { # net apt|PyPI LOG COMMAND...
  local what=$1 log=$2
  shift 2
  if "$@" >"$log" 2>&1; then return 0; fi
  if grep -Eq "$unreachable" "$log" || { [ "$what" = apt ] && [ -n "$apt_unreachable" ]; }; then
    grep -Eh -m 3 "$unreachable" "$log" "$logs/apt-update.log" 2>/dev/null || true
    skip "$what is unreachable from this machine, so the aarch64 install was not proven (log: $log)"
  fi
  tail -n 25 "$log" >&2
  die "$what step failed: $* (full log: $log)"
}

logged() { # logged LOG COMMAND...: a local step; its output is shown only when it fails
  local log=$1
  shift
  "$@" >"$log" 2>&1 || { tail -n 25 "$log" >&2; die "failed: $* (full log: $log)"; }
}

apt_updated=""
apt_update() {
  [ -z "$apt_updated" ] || return 0
  need_root "apt-get update" "apt-get update"
  net apt "$logs/apt-update.log" apt-get update
  # apt-get update exits 0 when a mirror cannot be reached; the next apt step decides.
  if grep -Eq "$unreachable" "$logs/apt-update.log"; then apt_unreachable=1; fi
  apt_updated=1
}

need_root() { [ "$(id -u)" = 0 ] || die "$1 needs root (run as root, or do it once by hand: $2)"; }

# ---------------------------------------------------------------------------------------------
models=()
if [ $# -gt 0 ]; then
  models=("$@")
elif [ -n "${PNEUMOSCAN_AARCH64_MODELS:-}" ]; then
  read -r -a models <<<"$PNEUMOSCAN_AARCH64_MODELS"
else
  models=("$repo/tests/data/tiny-int8.tflite")
  [ ! -f "$repo/$shipped_model" ] || models+=(installed)
fi
for i in "${!models[@]}"; do
  if [ "${models[$i]}" = installed ]; then
    [ -f "$repo/$shipped_model" ] || die "'installed' asks for the shipped model, but $shipped_model does not exist"
    continue
  fi
  [ -f "${models[$i]}" ] || die "model ${models[$i]} not found (give a .tflite with pneumoscan metadata, or 'installed')"
  models[i]=$(realpath "${models[$i]}")
done
command -v "$host_python" >/dev/null || die "host python '$host_python' not found (set PNEUMOSCAN_HOST_PYTHON)"
"$host_python" -m pip --version >/dev/null 2>&1 || die "'$host_python -m pip' does not work; pip is needed"
mkdir -p "$debdir" "$logs" "$cache/wheels"
rm -rf "$run" && mkdir -p "$run"
echo "cache: $cache"
echo "models: ${models[*]}"

# ---------------------------------------------------------------------------------------------
say "qemu-user"
if ! command -v qemu-aarch64-static >/dev/null; then
  need_root "installing qemu-user-static" "apt-get install qemu-user-static"
  apt_update
  net apt "$logs/apt-install.log" env DEBIAN_FRONTEND=noninteractive \
    apt-get install -y --no-install-recommends qemu-user-static
  echo "installed qemu-user-static"
fi
qemu-aarch64-static --version | sed -n 1p
known_cpus=$(qemu-aarch64-static -cpu help | tr -s ' \n' ' ' || true) # `-cpu help` exits 1
for cpu in "${cpus[@]}"; do
  grep -qw -- "${cpu%%,*}" <<<"$known_cpus" || die "qemu does not know CPU '$cpu' (PNEUMOSCAN_AARCH64_CPUS);$known_cpus"
done

say "aarch64 sysroot (Debian bookworm arm64 packages)"
newest_deb() { find "$debdir" -maxdepth 1 -name "${1}_*.deb" | sort -V | tail -n 1; }
missing=()
for p in "${debs[@]}"; do [ -n "$(newest_deb "$p")" ] || missing+=("$p:arm64"); done
if [ ${#missing[@]} -gt 0 ]; then
  if ! dpkg --print-foreign-architectures | grep -qx arm64; then
    need_root "adding the arm64 architecture" "dpkg --add-architecture arm64 && apt-get update"
    dpkg --add-architecture arm64
    apt_updated="" # the arm64 package lists come with the next update
    echo "added the arm64 architecture to dpkg"
  fi
  apt-cache show python3.11-minimal:arm64 >/dev/null 2>&1 || apt_update
  pushd "$debdir" >/dev/null # apt-get download saves into the current folder
  if ! apt-get download "${missing[@]}" >"$logs/apt-download.log" 2>&1; then
    apt_update # the package lists may name versions the mirror no longer has
    net apt "$logs/apt-download.log" apt-get download "${missing[@]}"
  fi
  popd >/dev/null
  echo "downloaded ${#missing[@]} packages"
fi
deb_files=()
for p in "${debs[@]}"; do deb_files+=("$(newest_deb "$p")"); done
stamp=$(printf '%s\n' "${deb_files[@]##*/}" | sha256sum | cut -c1-16)
if [ "$(cat "$sysroot/.stamp" 2>/dev/null)" != "$stamp" ]; then
  rm -rf "$sysroot"
  for f in "${deb_files[@]}"; do dpkg -x "$f" "$sysroot"; done
  echo "$stamp" >"$sysroot/.stamp"
fi
glibc=$(basename "$(newest_deb libc6)" | sed -E 's/^libc6_([0-9]+)\.([0-9]+).*/\1 \2/')
read -r glibc_major glibc_minor <<<"$glibc"
printf '%s\n' "${deb_files[@]##*/}" | grep -E '^(python3.11-minimal|libc6)_'

# Platform tags of the device's pip: every manylinux_2_X it accepts up to the sysroot's glibc, not
# only the three tags a quick reading suggests (with only those, pip picks an older LiteRT).
aarch64_pip=(--python-version 3.11 --implementation cp --abi cp311 --only-binary=:all:
  --platform manylinux_2_34_aarch64 --platform manylinux2014_aarch64 --platform manylinux_2_17_aarch64)
for ((m = 17; m <= glibc_minor; m++)); do aarch64_pip+=(--platform "manylinux_${glibc_major}_${m}_aarch64"); done

# An emulated command: Debian's arm64 python3.11 on a Raspberry Pi core. Runs from $run so that
# `-m edge_app` imports the installed wheel, never the source tree. OPENBLAS_* here name x86 cores.
emulated() { # emulated CPU SITE_DIR PYTHON_ARGS...
  local cpu=$1 site=$2
  shift 2
  local cmd=(env -u PYTHONHOME -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE -u PNEUMOSCAN_MODEL
    -u PNEUMOSCAN_RUNTIME PYTHONPATH="$site"
    PYTHONNOUSERSITE=1 qemu-aarch64-static -cpu "$cpu" -L "$sysroot" "$sysroot/usr/bin/python3.11" "$@")
  if [ -d "$site/ai_edge_litert" ]; then
    # LiteRT reads the CPU cache topology at interpreter creation; under qemu-user it reads the
    # host's x86 one and crashes (SIGSEGV). A private mount namespace gets a Pi-shaped one.
    local ns=(unshare --mount)
    [ "$(id -u)" = 0 ] || ns=(unshare --map-root-user --mount)
    # shellcheck disable=SC2016 # expanded by the inner bash
    cmd=("${ns[@]}" -- bash -c '
      set -e
      mount -t tmpfs -o size=64k,mode=0755 pneumoscan-cpus /sys/devices/system/cpu
      for i in 0 1 2 3; do
        mkdir -p /sys/devices/system/cpu/cpu$i/topology
        echo 0 >/sys/devices/system/cpu/cpu$i/topology/physical_package_id
        echo $i >/sys/devices/system/cpu/cpu$i/topology/core_id
      done
      for f in possible present online; do echo 0-3 >/sys/devices/system/cpu/$f; done
      exec "$@"' aarch64-cpu-topology "${cmd[@]}")
  fi
  (cd "$run" && "${cmd[@]}")
}

say "emulated python3.11: every stdlib extension module imports"
t0=$(date +%s.%N)
emulated "${cpus[0]}" "" -c '
import importlib, os, platform, sys
dynload = next(p for p in sys.path if p.endswith("lib-dynload"))
names = sorted(f.split(".")[0] for f in os.listdir(dynload) if f.endswith(".so"))
bad = []
for name in names:
    try:
        importlib.import_module(name)
    except ImportError as exc:
        bad.append(f"{name}: {exc}")
print(f"Python {platform.python_version()} on {platform.machine()}, {len(names) - len(bad)}/{len(names)} extension modules import")
sys.exit("missing shared libraries (add their package to debs=):\n  " + "\n  ".join(bad) if bad else 0)
' || die "Debian's arm64 python3.11 does not run under qemu with this sysroot (see above)"
echo "($(seconds_since "$t0") s emulated)"

# ---------------------------------------------------------------------------------------------
pip=("$host_python" -m pip)
quiet_pip=(--disable-pip-version-check --no-warn-conflicts)

# Resolve offline from the cache first, so warm runs need no network; download only what is new.
fetch() { # fetch DIR LOGNAME PIP_DOWNLOAD_ARGS...
  local dir=$1 log=$2
  shift 2
  mkdir -p "$dir"
  if ! "${pip[@]}" download --no-index --find-links "$dir" -d "$dir" "$@" >"$logs/$log.offline.log" 2>&1; then
    net PyPI "$logs/$log.log" "${pip[@]}" download -d "$dir" "$@"
    echo "downloaded into $dir"
  fi
  rm -f "$dir"/pneumoscan-*.whl # the project's own wheel is built fresh each run
}

say "the project's wheel (pure python, from the working tree)"
src=$run/src
mkdir -p "$src" "$run/dist"
(cd "$repo" && git ls-files -z --cached --others --exclude-standard) |
  (cd "$repo" && tar --null --ignore-failed-read --files-from=- -cf - 2>/dev/null) | tar -xf - -C "$src" ||
  die "could not copy the working tree (is $repo a git checkout?)"
build_requires=$("$host_python" -c 'import sys, tomllib; print(" ".join(tomllib.load(open(sys.argv[1], "rb"))["build-system"]["requires"]))' "$repo/pyproject.toml")
read -r -a build_requires <<<"$build_requires"
fetch "$cache/wheels/build" build --only-binary=:all: "${build_requires[@]}"
logged "$logs/wheel.log" "${pip[@]}" wheel --disable-pip-version-check --no-deps --no-index \
  --find-links "$cache/wheels/build" -w "$run/dist" "$src"
wheel=$(find "$run/dist" -name 'pneumoscan-*.whl')
[ -n "$wheel" ] || die "no pneumoscan wheel was built (log: $logs/wheel.log)"
# What pip is asked for. With the same key the resolution is the same, so the cached install is
# reused and only the project's own code is replaced in it (warm runs skip the dependency install).
requires=$("$host_python" - "$wheel" <<'PY'
import sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as z:
    info = next(n for n in z.namelist() if n.endswith(".dist-info/WHEEL")).rsplit("/", 1)[0]
    tags = [l[5:] for l in z.read(f"{info}/WHEEL").decode().splitlines() if l.startswith("Tag: ")]
    requires = [l for l in z.read(f"{info}/METADATA").decode().splitlines() if l.startswith("Requires-")]
if tags != ["py3-none-any"]:
    sys.exit(f"{sys.argv[1]} is tagged {tags}: the project's wheel must be pure python")
print("\n".join(requires))
PY
) || die "the project's wheel is not usable on the Pi as built (see above)"
echo "${wheel##*/}: pure python (py3-none-any)"

# The installed distributions of a folder: name version [binary tag], to show what pip resolved.
installed_list() {
  "$host_python" - "$1" <<'PY'
import pathlib, sys
rows = []
for info in sorted(pathlib.Path(sys.argv[1]).glob("**/*.dist-info")):
    headers = (info / "METADATA").read_text().split("\n\n", 1)[0]  # the description follows
    meta = dict(l.split(": ", 1) for l in headers.splitlines() if ": " in l)
    tags = [l.split(": ", 1)[1] for l in (info / "WHEEL").read_text().splitlines() if l.startswith("Tag: ")]
    binary = [t for t in tags if not t.endswith("-any")]
    rows.append(f"{meta['Name']} {meta['Version']}" + (f" [{binary[0].split('-')[-1]}]" if binary else ""))
print("   " + ", ".join(rows))
PY
}

install_key() { printf '%s\n' "$requires" "$@" | sha256sum | cut -c1-16; }
host_id=$("$host_python" -c 'import sys; print(sys.executable, sys.version)')

for extra in "${extras[@]}"; do
  say "pip resolves .[$extra] for aarch64 (bookworm, cp311) and for the x86 host"
  site=$installs/aarch64-$extra key=$(install_key "$extra" "${aarch64_pip[@]}")
  if [ "$(cat "$site/.key" 2>/dev/null)" = "$key" ]; then
    logged "$logs/install-aarch64-$extra.log" "${pip[@]}" install "${quiet_pip[@]}" --no-deps --upgrade \
      --target "$site" "${aarch64_pip[@]}" "$wheel"
    echo "aarch64 (requirements unchanged since the cached install; the project's code replaced):"
  else
    fetch "$cache/wheels/aarch64-$extra" "aarch64-$extra" "${aarch64_pip[@]}" "${wheel}[$extra]"
    rm -rf "$site"
    logged "$logs/install-aarch64-$extra.log" "${pip[@]}" install "${quiet_pip[@]}" --no-index \
      --find-links "$cache/wheels/aarch64-$extra" --target "$site" "${aarch64_pip[@]}" "${wheel}[$extra]"
    echo "$key" >"$site/.key"
    echo "aarch64:"
  fi
  installed_list "$site"

  venv=$installs/host-$extra key=$(install_key "$extra" "$host_id")
  if [ "$(cat "$venv/.key" 2>/dev/null)" = "$key" ]; then
    logged "$logs/install-host-$extra.log" "${pip[@]}" --python "$venv/bin/python" install "${quiet_pip[@]}" \
      --no-deps --force-reinstall "$wheel"
    echo "host $(uname -m) venv (requirements unchanged since the cached install; the project's code replaced):"
  else
    fetch "$cache/wheels/host-$extra" "host-$extra" --only-binary=:all: "${wheel}[$extra]"
    rm -rf "$venv"
    "$host_python" -m venv --without-pip "$venv" || die "could not create a venv with $host_python"
    logged "$logs/install-host-$extra.log" "${pip[@]}" --python "$venv/bin/python" install "${quiet_pip[@]}" \
      --no-index --find-links "$cache/wheels/host-$extra" --only-binary=:all: "${wheel}[$extra]"
    echo "$key" >"$venv/.key"
    echo "host $(uname -m) venv:"
  fi
  installed_list "$venv/lib"
done

# ---------------------------------------------------------------------------------------------
say "images"
images=$run/images
mkdir -p "$images"
"$installs/host-${extras[0]}/bin/python" - "$images" <<'PY'
import sys
from pathlib import Path
import numpy as np
from PIL import Image

out = Path(sys.argv[1])
def film(h, w, seed, opacity):
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w] / np.array([h, w]).reshape(2, 1, 1)
    img = 170 + 40 * np.exp(-((x - 0.5) ** 2) / 0.01) + 12 * np.sin(y * 60 + seed)
    for cx in (0.3, 0.7):
        img -= 90 * np.exp(-(((x - cx) / 0.14) ** 2 + ((y - 0.5) / 0.3) ** 2))
    img += opacity * 70 * np.exp(-(((x - 0.7) / 0.1) ** 2 + ((y - 0.6) / 0.12) ** 2))
    return img + rng.normal(0, 4, img.shape)
Image.fromarray(np.clip(film(512, 448, 1, 0.0), 0, 255).astype(np.uint8)).save(out / "clear.jpeg", quality=92)
Image.fromarray(np.clip(film(400, 400, 2, 1.0), 0, 255).astype(np.uint8)).save(out / "opacity.png")
# 12-bit content in a 16-bit PNG, as some X-ray units export.
Image.fromarray((np.clip(film(300, 360, 3, 0.6), 0, 255) * 16).astype(np.uint16)).save(out / "twelve-bit.png")
# Refused on both sides, with the same one-line reason: error paths are compared too.
Image.fromarray(np.clip(film(32, 32, 4, 0.0), 0, 255).astype(np.uint8)).save(out / "too-small.png")
PY
shared=$repo/../shared/data/chest_xray/train
if [ -d "$shared/NORMAL" ] && [ -d "$shared/PNEUMONIA" ]; then
  for label in NORMAL PNEUMONIA; do
    mapfile -t films < <(find "$shared/$label" -maxdepth 1 -name '*.jpeg' | sort)
    for f in "${films[@]:0:2}"; do ln -s "$(realpath "$f")" "$images/$label-${f##*/}"; done
  done
fi
ls "$images"

# ---------------------------------------------------------------------------------------------
cat >"$run/compare.py" <<'PY'
"""compare.py info|predict|runtimes A_JSON B_JSON TOLERANCE: x86 and aarch64 output agree
(``runtimes`` only reports how far two runtimes' probabilities are apart)."""
import json, sys

kind, x86_file, arm_file, tolerance = sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4])
x86, arm = (json.load(open(f)) for f in (x86_file, arm_file))
if kind == "runtimes":
    pairs = [(a, b) for a, b in zip(x86, arm) if "probability" in a and "probability" in b]
    worst = max((abs(a["probability"] - b["probability"]) for a, b in pairs), default=0.0)
    flips = sum(a["label"] != b["label"] for a, b in pairs)
    print(f"   max |diff| {worst:.1e} over {len(pairs)} images, {flips} label(s) differ")
    sys.exit(0)
if kind == "info":
    # model_path differs only for the installed model (inside each install's own folder).
    x86.pop("model_path"), arm.pop("model_path")
    if x86 != arm:
        for key in sorted(set(x86) | set(arm)):
            if x86.get(key) != arm.get(key):
                print(f"   {key}: x86 {x86.get(key)!r} != aarch64 {arm.get(key)!r}")
        sys.exit("   info differs")
    print(f"   info identical: runtime {arm['runtime']}, input {arm['input']}, version {arm['metadata'].get('version')}")
    print(f"   model loaded from {json.load(open(arm_file))['model_path']}")
    sys.exit(0)
# Probabilities are printed rounded to 6 decimals, so two equal ones can differ by 1e-6 plus the
# float error of the rounding; 1e-9 of slack covers that and nothing a model could produce.
bad = 0
if [r["path"] for r in x86] != [r["path"] for r in arm]:
    sys.exit("   the two runs screened different images")
print(f"   {'image':<40} {'x86 P(pneu)':>12} {'aarch64':>12} {'|diff|':>9}  label")
worst = 0.0
for a, b in zip(x86, arm):
    name = a["path"].rsplit("/", 1)[-1][:40]
    if "error" in a or "error" in b:  # refused on both sides for the same reason is agreement
        same = a == b
        bad += not same
        print(f"   {name:<40} not screened: x86 {a.get('error')!r}" + ("" if same else f", aarch64 {b.get('error')!r}  <-- MISMATCH"))
        continue
    diff = abs(a["probability"] - b["probability"])
    worst = max(worst, diff)
    same = {k: v for k, v in a.items() if k not in ("probability", "latency_ms")} == {
        k: v for k, v in b.items() if k not in ("probability", "latency_ms")}
    ok = diff <= tolerance + 1e-9 and same
    bad += not ok
    print(f"   {name:<40} {a['probability']:>12.6f} {b['probability']:>12.6f} {diff:>9.1e}  "
          f"{b['label']}{'' if ok else '  <-- MISMATCH'}")
print(f"   max |diff| {worst:.1e} (tolerance {tolerance:g}); {len(x86) - bad} of {len(x86)} equal")
if not any("probability" in a for a in x86):
    print("   no image was screened, so no probability was compared")
    sys.exit(2)
sys.exit(1 if bad else 0)
PY

failures=() summary=()
# A run is usable when it printed JSON and exited 0, or 1 for predict (some input could not be
# screened: the comparison judges those rows). A traceback also exits 1, but prints no JSON.
usable() { # usable STATUS COMMAND JSON_FILE
  { [ "$1" = 0 ] || { [ "$2" = predict ] && [ "$1" = 1 ]; }; } && "$host_python" -m json.tool "$3" >/dev/null 2>&1
}
record() { summary+=("$(printf '%-12s %-11s %-34s %-8s %7s s  %s' "$@")"); }

for model in "${models[@]}"; do
  model_args=(--model "$model") name=${model##*/}
  if [ "$model" = installed ]; then model_args=() name="installed:${shipped_model##*/}"; fi
  for extra in "${extras[@]}"; do
    say "$name with .[$extra]: x86 host run"
    out=$run/out/$extra/$name
    mkdir -p "$out"
    host_ok=1
    for cmd in info predict; do
      args=("$cmd" "${model_args[@]}" --format json)
      [ "$cmd" = info ] || args+=("$images"/*)
      status=0
      (cd "$run" && env -u PNEUMOSCAN_MODEL -u PNEUMOSCAN_RUNTIME "$installs/host-$extra/bin/pneumoscan" \
        "${args[@]}" >"$out/x86-$cmd.json" 2>"$out/x86-$cmd.err") || status=$?
      if ! usable "$status" "$cmd" "$out/x86-$cmd.json"; then
        tail -n 15 "$out/x86-$cmd.err" >&2
        failures+=("x86 $extra $name $cmd exited $status (see above)")
        host_ok=""
      fi
    done
    [ -n "$host_ok" ] || continue
    echo "   pneumoscan info and predict ran on $(uname -m) (reference for the runs below)"
    for cpu in "${cpus[@]}"; do
      for cmd in info predict; do
        args=(-m edge_app "$cmd" "${model_args[@]}" --format json)
        [ "$cmd" = info ] || args+=("$images"/*)
        say "$name with .[$extra]: aarch64 ($cpu) pneumoscan $cmd"
        printf '   $ PYTHONPATH=%s qemu-aarch64-static -cpu %s -L %s %s %s\n' "$installs/aarch64-$extra" "$cpu" \
          "$sysroot" "$sysroot/usr/bin/python3.11" "${args[*]}"
        t0=$(date +%s.%N)
        status=0
        emulated "$cpu" "$installs/aarch64-$extra" "${args[@]}" >"$out/$cpu-$cmd.json" 2>"$out/$cpu-$cmd.err" || status=$?
        wall=$(seconds_since "$t0")
        echo "   emulated wall time: $wall s"
        if ! usable "$status" "$cmd" "$out/$cpu-$cmd.json"; then
          tail -n 15 "$out/$cpu-$cmd.err" >&2
          failures+=("aarch64 $cpu $extra $name $cmd exited $status")
          record "$extra" "$cpu" "$name" "$cmd" "$wall" "FAILED (exit $status, see above)"
        else
          verdict=0
          "$host_python" "$run/compare.py" "$cmd" "$out/x86-$cmd.json" "$out/$cpu-$cmd.json" "$tolerance" || verdict=$?
          case $verdict in
            0) record "$extra" "$cpu" "$name" "$cmd" "$wall" "equal to x86" ;;
            2) failures+=("aarch64 $cpu $extra $name $cmd: no image was screened (on x86 either)")
               record "$extra" "$cpu" "$name" "$cmd" "$wall" "NOTHING SCREENED" ;;
            *) failures+=("aarch64 $cpu $extra $name $cmd differs from x86")
               record "$extra" "$cpu" "$name" "$cmd" "$wall" "DIFFERS from x86" ;;
          esac
        fi
      done
    done
  done
  if [ -s "$run/out/edge/$name/x86-predict.json" ] && [ -s "$run/out/edge-legacy/$name/x86-predict.json" ]; then
    say "$name: LiteRT (.[edge]) vs tflite-runtime (.[edge-legacy]) on x86 (reported, not judged)"
    "$host_python" "$run/compare.py" runtimes "$run/out/edge/$name/x86-predict.json" \
      "$run/out/edge-legacy/$name/x86-predict.json" "$tolerance" || echo "   (not comparable)"
  fi
done

# ---------------------------------------------------------------------------------------------
# The web page: .[edge,serve] installed for aarch64, the app served by waitress inside the emulated
# interpreter (qemu-user runs one process, so the client is a thread of it: edge_app.serve's own
# build_server, a real socket, a real HTTP request with its CSRF token), one film screened through
# POST /api/screen; its answer must equal the x86 `predict` record of that film.
if [ "${PNEUMOSCAN_AARCH64_SERVE:-1}" = 1 ]; then
  serve_model=${models[0]} serve_name=${models[0]##*/}
  [ "$serve_model" != installed ] || serve_name="installed:${shipped_model##*/}"
  x86_json=$run/out/edge/$serve_name/x86-predict.json
  if [[ " ${extras[*]} " != *" edge "* ]] || [ ! -s "$x86_json" ]; then
    echo "   serve check skipped: it needs the .[edge] x86 predict run above (PNEUMOSCAN_AARCH64_EXTRAS)"
  else
    say "pip resolves .[edge,serve] for aarch64"
    site=$installs/aarch64-edge-serve key=$(install_key "edge,serve" "${aarch64_pip[@]}")
    if [ "$(cat "$site/.key" 2>/dev/null)" = "$key" ]; then
      logged "$logs/install-aarch64-serve.log" "${pip[@]}" install "${quiet_pip[@]}" --no-deps --upgrade \
        --target "$site" "${aarch64_pip[@]}" "$wheel"
    else
      fetch "$cache/wheels/aarch64-edge-serve" "aarch64-edge-serve" "${aarch64_pip[@]}" "${wheel}[edge,serve]"
      rm -rf "$site"
      logged "$logs/install-aarch64-serve.log" "${pip[@]}" install "${quiet_pip[@]}" --no-index \
        --find-links "$cache/wheels/aarch64-edge-serve" --target "$site" "${aarch64_pip[@]}" "${wheel}[edge,serve]"
      echo "$key" >"$site/.key"
    fi
    installed_list "$site"
    cat >"$run/serve_probe.py" <<'PY'
"""serve_probe.py MODEL|installed X86_PREDICT_JSON FOLDER: serve the app, POST one film, compare."""
import json, sys, threading, urllib.request, uuid
from pathlib import Path
from edge_app.model_file import load_classifier
from edge_app.serve.context import Settings
from edge_app.serve.server import build_server
from edge_app.serve.service import ScreeningService
from edge_app.serve.storage import FilmStore

model, x86_json, folder = sys.argv[1], sys.argv[2], Path(sys.argv[3])
x86 = [r for r in json.load(open(x86_json)) if "probability" in r]
if not x86:
    sys.exit("   no film was screened by x86 predict, nothing to compare")
film = Path(x86[0]["path"])
store = FilmStore(folder / "data")
service = ScreeningService(load_classifier(None if model == "installed" else model), store, folder / "log.sqlite")
server = build_server(service, Settings("127.0.0.1", 0, folder / "log.sqlite", store.root, 50_000_000), threads=2)
threading.Thread(target=server.run, daemon=True).start()
url = f"http://127.0.0.1:{server.effective_port}/"
http = urllib.request.build_opener(urllib.request.HTTPCookieProcessor())
token = json.load(http.open(url + "api/session", timeout=300))["csrf_token"]
boundary = uuid.uuid4().hex
body = (f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{film.name}"\r\n'
        "Content-Type: application/octet-stream\r\n\r\n").encode() + film.read_bytes() + f"\r\n--{boundary}--\r\n".encode()
request = urllib.request.Request(url + "api/screen", data=body, headers={
    "Content-Type": f"multipart/form-data; boundary={boundary}", "X-CSRFToken": token})
with http.open(request, timeout=600) as answer:
    status, got = answer.status, json.load(answer)
want = {**x86[0], "path": film.name}
same = {k: v for k, v in got.items() if k != "latency_ms"} == {k: v for k, v in want.items() if k != "latency_ms"}
print(f"   POST /api/screen {film.name}: HTTP {status}, P(pneumonia) aarch64 {got.get('probability')} "
      f"x86 predict {want['probability']}: {'equal' if same else 'DIFFERENT'}")
server.close()
sys.exit(0 if status == 201 and same else 1)
PY
    serve_cpu=${cpus[0]}
    say ".[edge,serve]: aarch64 ($serve_cpu) web server answers POST /api/screen"
    rm -rf "$run/serve" && mkdir -p "$run/serve"
    t0=$(date +%s.%N)
    status=0
    emulated "$serve_cpu" "$site" "$run/serve_probe.py" "$serve_model" "$x86_json" "$run/serve" \
      2>"$run/serve/probe.err" || status=$?
    wall=$(seconds_since "$t0")
    echo "   emulated wall time: $wall s"
    if [ "$status" = 0 ]; then
      record "edge,serve" "$serve_cpu" "$serve_name" "serve" "$wall" "equal to x86 predict"
    else
      tail -n 15 "$run/serve/probe.err" >&2
      failures+=("aarch64 $serve_cpu serve $serve_name: POST /api/screen failed or differs (exit $status)")
      record "edge,serve" "$serve_cpu" "$serve_name" "serve" "$wall" "FAILED (exit $status, see above)"
    fi
  fi
fi

say "summary (emulated wall times are reported, not judged)"
printf '%-12s %-11s %-34s %-8s %9s  %s\n' extra cpu model command wall result
printf '%s\n' "${summary[@]}"
echo "total wall time $(seconds_since "$started") s; files of this run: $run"
if [ ${#failures[@]} -gt 0 ]; then
  printf '  - %s\n' "${failures[@]}" >&2
  die "${#failures[@]} aarch64 check(s) failed"
fi
echo "check-aarch64: OK: ${extras[*]}$([ "${PNEUMOSCAN_AARCH64_SERVE:-1}" = 1 ] && echo " and edge,serve") install and run on aarch64 (${cpus[*]}) with x86-equal output"
