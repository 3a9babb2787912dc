#!/usr/bin/env bash
# The GPU rows of bench/RESULTS.md in one run, for a lent GPU machine with no network (about 3 minutes on an H200):
#   1. LTX-2 2.0 / 2.3 / 2.5: real-size transformer (random bf16 weights), one fast, pro stage-1 and pro stage-2
#      step at 768x512x121, per release, as ratios to 2.0 (bench/ltx2.py --release, then --render);
#   2. Wav2Lip: generator and S3FD detector throughput for 720p video, from tensors (bench/wav2lip_models.py);
#   3. LTX-2 video VAE decode of that request's latents, 2.0's and 2.3's VAE (bench/ltx2.py --vae).
# Each part runs in its own process under its own time limit, clipped so the whole run ends within BUDGET_S, so a
# failing part leaves the others' results. Without CUDA every part runs a short CPU smoke version instead.
#
#   OUT=/path/to/results bash bench/gpu_check.sh
#
# Writes $OUT/gpu_results.md (every table, and each step's outcome), $OUT/log.txt (everything printed) and
# $OUT/raw/*.json (the raw numbers). PYTHON picks the interpreter (default python3).
#
# The packages the GPU machine's python3 (3.12, torch, transformers, numpy, ...) lacks travel as wheels in .whl/
# (git-ignored) and are installed into /tmp/site; fetch them where pip reaches PyPI, in the repository root:
#   python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
#     --platform manylinux2014_x86_64 -d .whl diffusers==0.42.1 pydantic==2.14.4 pydantic_core==2.50.5 \
#     annotated_types==0.8.0 typing_inspection==0.4.5 typing_extensions==4.16.0 importlib_metadata==8.7.0 zipp==3.23.0
# (9 MB; importlib_metadata and zipp for diffusers; pydantic's four for deployments/; no PyAV or librosa: the parts
# here import neither).
set -uo pipefail
cd "$(dirname "$0")/.." || exit

OUT=${OUT:-/tmp/gpu_check}
PYTHON=${PYTHON:-python3}
BUDGET_S=${BUDGET_S:-330}  # the whole run, wheels included; the machine's command limit is 6 minutes
RESERVE_S=10               # kept for writing gpu_results.md
WORK=$(mktemp -d)
mkdir -p "$OUT/raw"
: >"$OUT/log.txt"
exec > >(tee -a "$OUT/log.txt") 2>&1
TEE_PID=$!
export PYTHONUNBUFFERED=1 PYTHONPATH=$PWD
OUTCOMES=()

# step NAME LIMIT_S COMMAND...: run COMMAND under LIMIT_S seconds (less if the budget has less left) and record
# its outcome; a step that would get under 10 s is skipped. Its own lines go to stderr, so `step ... >FILE` keeps
# only the command's output.
step() {
    local name=$1 limit=$2
    shift 2
    local left=$((BUDGET_S - RESERVE_S - SECONDS))
    ((left < limit)) && limit=$left
    if ((limit < 10)); then
        echo "=== [${SECONDS} s] $name: skipped, the time budget is spent" >&2
        OUTCOMES+=("| $name | skipped: time budget spent | 0 |")
        return 1
    fi
    echo "=== [${SECONDS} s] $name (limit ${limit} s): $*" >&2
    local start=$SECONDS rc
    timeout -k 5 "$limit" "$@"
    rc=$?
    local outcome="ok"
    ((rc == 124 || rc == 137)) && outcome="timed out after ${limit} s"
    ((rc != 0 && rc != 124 && rc != 137)) && outcome="failed (exit $rc, see log.txt)"
    echo "=== [${SECONDS} s] $name: $outcome" >&2
    OUTCOMES+=("| $name | $outcome | $((SECONDS - start)) |")
    return $rc
}

if [ -d .whl ] && step "install wheels (.whl)" 60 "$PYTHON" -m pip install -q --no-index --no-deps --no-compile \
    --no-cache-dir --upgrade --target /tmp/site .whl/*.whl; then
    export PYTHONPATH=/tmp/site:$PWD
fi

CUDA=$(timeout 60 "$PYTHON" -c 'import torch; print(int(torch.cuda.is_available()))' 2>/dev/null || echo 0)
if [ "$CUDA" = 1 ]; then
    REPEATS=5
    VAE_REPEATS=2
    SMOKE=()
    timeout 20 nvidia-smi || true
else
    echo "No CUDA device: CPU smoke run (tiny models and sizes; the numbers mean nothing)"
    REPEATS=1
    VAE_REPEATS=1
    SMOKE=(--smoke)
fi

step "environment" 30 "$PYTHON" - >"$WORK/env.md" <<'EOF'
import importlib.metadata
import os
import platform
import shutil
import subprocess
import time

import torch


def version(name: str) -> str:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return "MISSING"


if torch.cuda.is_available():
    props = torch.cuda.get_device_properties(0)
    gpu = f"{props.name}, {props.total_memory / 2**30:.0f} GiB, {props.multi_processor_count} SMs"
    if shutil.which("nvidia-smi"):
        query = ["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"]
        gpu += f", driver {subprocess.run(query, capture_output=True, text=True).stdout.strip()}"
else:
    gpu = "none: CPU smoke run, the numbers mean nothing"
print(f"- Date: {time.strftime('%Y-%m-%d %H:%M %Z')}")
print(f"- GPU: {gpu}")
print(f"- CUDA {torch.version.cuda}, cuDNN {torch.backends.cudnn.version()}, torch {torch.__version__}")
print(f"- Host: {platform.node()}, {platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}")
names = ("diffusers", "transformers", "huggingface-hub", "accelerate", "pydantic", "numpy", "safetensors")
print("- Packages: " + ", ".join(f"{name} {version(name)}" for name in names))
EOF
cat "$WORK/env.md"

for release in 2.0 2.3 2.5; do
    step "LTX-2 $release transformer steps" 100 "$PYTHON" -m bench.ltx2 --release "$release" --repeats "$REPEATS" \
        --json "$OUT/raw/ltx2_$release.json"
done
shopt -s nullglob
measured=("$OUT"/raw/ltx2_2.*.json)
if ((${#measured[@]})); then
    step "LTX-2 per-release table" 40 "$PYTHON" -m bench.ltx2 --render "${measured[@]}" --out "$WORK/ltx2.md"
fi
step "Wav2Lip networks" 90 "$PYTHON" -m bench.wav2lip_models "${SMOKE[@]}" --out "$WORK/wav2lip.md" \
    --json "$OUT/raw/wav2lip.json"
step "LTX-2 VAE decode" 90 "$PYTHON" -m bench.ltx2 --vae --repeats "$VAE_REPEATS" --out "$WORK/vae.md" \
    --json "$OUT/raw/ltx2_vae.json"

section() {  # section FILE WHAT: the fragment, or a line saying it is missing
    if [ -s "$1" ]; then
        cat "$1"
    else
        echo "$2: not measured (see the steps above and log.txt)."
    fi
    echo
}

{
    echo "# GPU check (bench/gpu_check.sh)"
    echo
    section "$WORK/env.md" "Environment"
    echo "| step | outcome | seconds |"
    echo "|---|---|---|"
    printf '%s\n' "${OUTCOMES[@]}"
    echo
    echo "Whole run: ${SECONDS} s. Raw numbers: raw/*.json; full output: log.txt."
    echo
    section "$WORK/ltx2.md" "LTX-2 per release"
    section "$WORK/wav2lip.md" "Wav2Lip networks"
    section "$WORK/vae.md" "LTX-2 VAE decode"
} >"$OUT/gpu_results.md"
rm -rf "$WORK"
echo "=== [${SECONDS} s] done: $OUT/gpu_results.md"
cat "$OUT/gpu_results.md"
exec >&- 2>&-
wait "$TEE_PID"
