#!/usr/bin/env bash
# The GPU checks of sketchrl, for a machine with one CUDA GPU (about 5 minutes):
# the CUDA tests, bench_rl.py and bench_eval.py on the GPU, and `reproduce --quick` on the GPU.
#   bash benchmarks/gpu_check.sh [OUT_DIR]      (needs the .venv of the README, or sketchrl
#                                                installed, and SKETCHRL_ASSET_URL set)
set -uo pipefail
cd "$(dirname "$0")/.."
out="${1:-${OUT:-/tmp/sketchrl-gpu-check}}"
mkdir -p "$out"
[ -f .venv/bin/activate ] && . .venv/bin/activate
export PYTHONUNBUFFERED=1 SKETCHRL_ASSET_URL="${SKETCHRL_ASSET_URL:-$(cd .. && pwd)/shared/assets}"
python -c "import torch; assert torch.cuda.is_available(), 'no CUDA GPU'; print(torch.cuda.get_device_name())" || exit 1
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv | tee "$out/gpu.txt"
status=0
echo "== CUDA tests"; timeout 120 python -m pytest -q -m cuda 2>&1 | tee "$out/cuda_tests.txt" || status=1
echo "== bench_rl on the GPU"; (cd benchmarks && timeout 150 python bench_rl.py --device cuda --batches 5) 2>&1 | tee "$out/bench_rl_cuda.txt" || status=1
echo "== bench_eval on the GPU"; timeout 90 python benchmarks/bench_eval.py --device cuda 2>&1 | tee "$out/bench_eval_cuda.txt" || status=1
echo "== reproduce --quick on the GPU"; timeout 150 sketchrl reproduce --preset offline --quick --seeds 1 --device cuda --threads 4 --workers 1 --out "$out/quick" --quiet 2>&1 | tail -20 | tee "$out/reproduce_quick.txt" || status=1
exit $status
