#!/usr/bin/env bash
# The checks and numbers that need a CUDA GPU, in one go (a GPU is lent for minutes):
#
#     DEEPMF_DATA_DIR=DIR benchmarks/cuda.sh OUTDIR [STEP ...]
#
# 1. the tests marked gpu (tests/test_cuda.py and the sampler's);
# 2. benchmarks/scale.py --device cuda: neumf at 1M, 5M and 20M with its recipe, then at 20M
#    with NVIDIA's NCF batch (1,048,576 samples), and also with NVIDIA's NCF model (64
#    factors, MLP 256-256-128-64); biased-mf and dmf at 1M and 20M; biased-mf with
#    lazy-adam (what the command line picks for it on the 20M tables) at 1M and 20M;
# 3. the README's main job (biased-mf, ml-100k folds) and neumf on AMusic, on the GPU that
#    --device auto picks.
# 4. the whole test suite on that machine without data (--device auto picks the GPU in the
#    command-line tests; modules whose optional packages are missing there are skipped).
# Each step (named below; all of them unless STEPs are named) has a time limit and leaves
# its output in OUTDIR (JSON for the benchmarks); a line per step on stdout says how it
# ended. Runs from a checkout without installing (PYTHONPATH=src), with the python3 that
# has a CUDA build of PyTorch ($PYTHON to choose).
set -u
out=${1:?usage: benchmarks/cuda.sh OUTDIR [STEP ...]}
shift
wanted=" $* "
mkdir -p "$out"
cd "$(dirname "$0")/.."
export PYTHONPATH=src${PYTHONPATH:+:$PYTHONPATH} PYTHONUNBUFFERED=1
py=${PYTHON:-python3}

step() {  # step NAME SECONDS COMMAND...: stdout to NAME.out, stderr to steps.log
    local name=$1 limit=$2 start=$SECONDS rc
    shift 2
    [[ $wanted == "  " || $wanted == *" $name "* ]] || return 1
    echo "== $name: $*" >>"$out/steps.log"
    timeout "$limit" "$@" >"$out/$name.out" 2>>"$out/steps.log"
    rc=$?
    echo "$name: exit $rc after $((SECONDS - start)) s"
    return $rc
}

nvidia-smi -L
$py -c 'import torch; print("torch", torch.__version__, torch.cuda.get_device_name())'
step tests 120 $py -m pytest -q -p no:cacheprovider -m gpu tests/test_cuda.py \
    tests/test_sampling.py; tail -3 "$out/tests.out" 2>/dev/null
step scale_neumf 200 $py benchmarks/scale.py 1000000,5000000,20000000 neumf --device cuda
step scale_neumf_1m_batch 100 $py benchmarks/scale.py 20000000 neumf --device cuda \
    --batch-size 1048576
step scale_neumf_nvidia 120 $py benchmarks/scale.py 20000000 neumf --device cuda \
    --batch-size 1048576 --dim 64 --layers 256,256,128,64
step main_job 100 $py -m deepmf train --model biased-mf --dataset ml-100k --split folds &&
    tail -4 "$out/main_job.out"
step neumf_amusic 100 $py -m deepmf train --model neumf --dataset ncf:deepcf/AMusic --quiet \
    --out "${TMPDIR:-/tmp}/deepmf-cuda-amusic-$$" && tail -4 "$out/neumf_amusic.out"
step scale_others 240 $py benchmarks/scale.py 1000000,20000000 biased-mf,dmf --device cuda \
    --optimizer adam
step scale_lazy 240 $py benchmarks/scale.py 1000000,20000000 biased-mf --device cuda \
    --optimizer lazy-adam
missing=$($py -c 'import importlib.util as u
print(" ".join(f"--ignore=tests/{t}" for m, ts in {"fastapi": ["test_serve.py",
      "test_serve_abuse.py", "test_browser.py"], "uvicorn": ["test_bad_input_runs.py"],
      "optuna": ["test_tune.py"],
      "schemathesis": ["test_serve_abuse.py"]}.items() if not u.find_spec(m) for t in ts))')
step suite 200 env -u DEEPMF_DATA_DIR $py -m pytest -q -p no:cacheprovider -n 8 $missing
tail -15 "$out/suite.out" 2>/dev/null
for f in "$out"/scale_*.out; do
    [[ -s $f ]] || continue
    $py -c 'import json, sys
for r in json.load(open(sys.argv[1]))["runs"]:
    print({k: r.get(k) for k in ("model", "size", "batch_size", "epoch_seconds",
          "samples_per_second", "full_ranking_seconds", "full_hr@10", "peak_gpu_gb", "error")})' "$f"
done
