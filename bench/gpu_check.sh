#!/usr/bin/env bash
# bench/gpu_check.sh: lit_rl on one CUDA GPU, a few minutes (issue 31.5). Run it whenever a
# machine with a GPU is at hand; it writes its own section of BENCHMARKS.md (between
# <!-- gpu-check:start --> and <!-- gpu-check:end -->).
#
#   1. every algorithm's update on cuda in bf16-mixed: `python -m lit_rl fit` on the smoke configs
#      (DDPG, TD3, SAC, MPO, CrossQ, Lattice-SAC, Dyna; 400 env steps each) with
#      --trainer.accelerator gpu --trainer.devices 1 --trainer.precision bf16-mixed; each must end
#      with its checkpoint, gradient updates made, finite weights, and Lightning reporting the GPU used;
#   2. a DDP run on one GPU: the DDPG smoke config with --trainer.strategy ddp --trainer.devices 1;
#   3. DEP-MPO's learner throughput: MPO at myoLegWalk-v0's sizes (403 observations, 80 muscles),
#      hidden 1024, batches of 256 already on the device, phases of 30 batch iterations (deprl's),
#      in updates/s, on the GPU (float32 and bf16-mixed) against the CPU (float32, bf16-mixed).
#
# It fails at once, before anything runs, when torch sees no CUDA GPU. It needs no network and
# installs nothing: it runs the repository's .venv (LIT_RL_PYTHON=/path/to/python picks another
# interpreter that has lit_rl's dependencies and a CUDA build of torch). Exit status 0 when every
# step passed, 1 when one failed (the section says which, with the log's last line), 2 on a usage
# error or no GPU.
#
#   bench/gpu_check.sh                  # on a machine with a GPU: writes BENCHMARKS.md's section
#   bench/gpu_check.sh --cpu-dry-run    # the same steps on the CPU with tiny budgets, to test the
#                                       # script anywhere; writes bench_runs/gpu_check_dry_run.md
#   bench/gpu_check.sh --benchmarks FILE  # write the section into FILE instead
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)

usage() { sed -n '2,/^set -uo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//'; }
die() { echo "bench/gpu_check.sh: $*" >&2; exit 2; }

MODE=gpu
TARGET=""
while [ $# -gt 0 ]; do
    case "$1" in
        --cpu-dry-run) MODE=cpu ;;
        --benchmarks) [ $# -ge 2 ] || die "--benchmarks needs a file"; TARGET=$2; shift ;;
        -h | --help) usage; exit 0 ;;
        *) die "unknown argument '$1' (--cpu-dry-run, --benchmarks FILE, --help)" ;;
    esac
    shift
done

PY=${LIT_RL_PYTHON:-.venv/bin/python}
[ -x "$PY" ] || die "no Python at $PY: run 'make test' once to build .venv, or set LIT_RL_PYTHON"
export PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}" WANDB_MODE=offline PYTHONUNBUFFERED=1

if [ "$MODE" = gpu ]; then
    ACCELERATOR=gpu
    TARGET=${TARGET:-BENCHMARKS.md}
    # shellcheck disable=SC2016
    "$PY" -c '
import sys, torch
if not torch.cuda.is_available():
    build = f"CUDA {torch.version.cuda}" if torch.version.cuda else "a CPU-only build"
    sys.exit(f"bench/gpu_check.sh: torch {torch.__version__} ({build}) sees no CUDA GPU: this check needs one "
             "(--cpu-dry-run runs its steps on the CPU)")
print(f"GPU: {torch.cuda.get_device_name(0)}, torch {torch.__version__}, CUDA {torch.version.cuda}")
' || exit 2
else
    ACCELERATOR=cpu
    TARGET=${TARGET:-bench_runs/gpu_check_dry_run.md}
    echo "CPU dry run: the GPU check's steps on the CPU with tiny budgets; BENCHMARKS.md is not touched"
fi

WORK=$(mktemp -d "${TMPDIR:-/tmp}/gpu_check.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
RESULTS=$WORK/results.tsv # name, what, rc, seconds, log
: >"$RESULTS"

# fit NAME WHAT CONFIG [extra CLI arguments...]: one training run, its verdict appended to RESULTS
fit() {
    local name=$1 what=$2 config=$3
    shift 3
    local log=$WORK/$name.log start end rc
    echo "== $name: $what"
    start=$(date +%s.%N)
    "$PY" -m lit_rl fit --config "configs/smoke/$config.yaml" --trainer.accelerator "$ACCELERATOR" \
        --trainer.devices 1 --trainer.logger false --trainer.enable_progress_bar false \
        --working_dir "$WORK/runs" --name "$name" "$@" >"$log" 2>&1
    rc=$?
    end=$(date +%s.%N)
    if [ $rc -eq 0 ]; then # the run's checkpoint: updates made, weights finite, on the accelerator asked for
        "$PY" - "$WORK/runs/$name/checkpoints/last.ckpt" "$log" "$MODE" >>"$log" 2>&1 <<'EOF'
import sys
import torch
checkpoint = torch.load(sys.argv[1], weights_only=True, map_location="cpu")
updates = checkpoint.get("updates", 0)
assert updates > 0, "no gradient update was made"
weights = [v for v in checkpoint["state_dict"].values() if v.is_floating_point()]
assert all(torch.isfinite(v).all() for v in weights), "non-finite weights"
text = open(sys.argv[2]).read()
used = "GPU available: True (cuda), used: True" in text
assert used == (sys.argv[3] == "gpu"), "Lightning did not run on the accelerator asked for"
print(f"check: {updates} updates, weights finite, GPU used: {used}")
EOF
        rc=$?
    fi
    printf '%s\t%s\t%s\t%.1f\t%s\n' "$name" "$what" "$rc" "$(awk "BEGIN { print $end - $start }")" "$log" >>"$RESULTS"
    [ $rc -eq 0 ] && echo "   ok" || echo "   FAILED (rc $rc): $(tail -n 1 "$log")"
}

BF16=(--trainer.precision bf16-mixed)
fit ddpg "DDPG" ddpg_pendulum "${BF16[@]}"
fit td3 "TD3" td3_pendulum "${BF16[@]}"
fit sac "SAC" sac_pendulum "${BF16[@]}"
fit mpo "MPO" mpo_pendulum "${BF16[@]}"
fit crossq "CrossQ" crossq_pendulum "${BF16[@]}"
fit lattice_sac "Lattice-SAC" sac_pendulum "${BF16[@]}" --model.init_args.policy_head lattice
fit dyna "Dyna" dyna_pendulum "${BF16[@]}"
fit ddp "DDP, 1 process (DDPG, float32)" ddpg_pendulum --trainer.strategy ddp

echo "== DEP-MPO learner throughput"
THROUGHPUT=$WORK/throughput.json
"$PY" - "$MODE" "$THROUGHPUT" >"$WORK/throughput.log" 2>&1 <<'EOF'
import json
import sys
import time

import torch

from lit_rl.algos import MPO
from lit_rl.contract import Batch

mode, out = sys.argv[1], sys.argv[2]
OBSERVATIONS, MUSCLES, BATCH, ITERATIONS = 403, 80, 256, 30  # myoLegWalk-v0's sizes, deprl's replay
hidden = 1024 if mode == "gpu" else 64  # the dry run: tiny budgets
PHASES = {"cuda": 10, "cpu": 3 if mode == "gpu" else 2}  # timed phases after a warm-up one


def updates_per_second(device: str, precision: str) -> float:
    torch.manual_seed(0)
    module = MPO(observation_dim=OBSERVATIONS, action_bounds=[[-1.0] * MUSCLES, [1.0] * MUSCLES], hidden_size=hidden,
                 normalize_observations="critic", normalizer_statistics="float32").to(device)  # fmt: skip
    optimizers = module.configure_optimizers()
    module.optimizers = lambda: optimizers  # outside a Trainer: the update's own code, a plain backward
    module.manual_backward = lambda loss: loss.backward()
    batches = [
        Batch(torch.randn(BATCH, OBSERVATIONS, device=device), torch.rand(BATCH, MUSCLES, device=device) * 2 - 1,
              torch.randn(BATCH, device=device), torch.randn(BATCH, OBSERVATIONS, device=device),
              torch.full((BATCH,), 0.97, device=device))
        for _ in range(ITERATIONS)
    ]  # fmt: skip
    autocast = torch.autocast(device, dtype=torch.bfloat16, enabled=precision == "bf16-mixed")

    def phase():
        with autocast:
            for batch in batches:
                module.update(batch)
        if device == "cuda":
            torch.cuda.synchronize()

    phase()  # warm-up: kernels, allocator, Adam's state
    start = time.perf_counter()
    for _ in range(PHASES[device]):
        phase()
    return PHASES[device] * ITERATIONS / (time.perf_counter() - start)


results = {"hidden": hidden, "phases": PHASES, "threads": torch.get_num_threads(), "rates": {}}
devices = ["cuda", "cpu"] if mode == "gpu" else ["cpu"]
for device in devices:
    for precision in ("32-true", "bf16-mixed"):
        rate = updates_per_second(device, precision)
        results["rates"][f"{device} {precision}"] = rate
        print(f"{device} {precision}: {rate:,.1f} updates/s")
json.dump(results, open(out, "w"))
EOF
THROUGHPUT_RC=$?
cat "$WORK/throughput.log"
[ $THROUGHPUT_RC -eq 0 ] || echo "   FAILED (rc $THROUGHPUT_RC): $(tail -n 1 "$WORK/throughput.log")"

echo "== writing the gpu-check section into $TARGET"
"$PY" - "$MODE" "$RESULTS" "$THROUGHPUT" "$THROUGHPUT_RC" "$WORK/throughput.log" "$TARGET" <<'EOF'
import json
import re
import sys
from pathlib import Path

sys.path.insert(0, "bench")
from summary import machine_line  # noqa: E402

mode, results, throughput, throughput_rc, throughput_log, target = sys.argv[1:]
START, END = "<!-- gpu-check:start -->", "<!-- gpu-check:end -->"


def last_line(log: str) -> str:
    lines = [line.strip() for line in Path(log).read_text().splitlines() if line.strip()]
    return (lines[-1] if lines else "no output").replace("|", "/")[:200]


rows = [line.split("\t") for line in Path(results).read_text().splitlines()]
failed = [name for name, _, rc, _, _ in rows if rc != "0"] + (["throughput"] if throughput_rc != "0" else [])
where = "cuda" if mode == "gpu" else "cpu"
lines = [
    machine_line(),
    "",
    f"`bench/gpu_check.sh{' --cpu-dry-run' if mode == 'cpu' else ''}`: "
    + ("every step passed." if not failed else f"**failed: {', '.join(failed)}**."),
    "",
    f"| run ({where}, bf16-mixed unless said; smoke configs, 400 env steps) | result | wall s |",
    "|---|---|---|",
]
for _name, what, rc, seconds, log in rows:
    lines.append(f"| {what} | {'ok' if rc == '0' else 'FAILED: ' + last_line(log)} | {seconds} |")
lines += ["", "DEP-MPO learner throughput (myoLegWalk-v0's sizes, batches of 256 on the device, 30 per phase):", ""]
if throughput_rc == "0":
    data = json.loads(Path(throughput).read_text())
    lines += [f"| device, precision (hidden {data['hidden']}) | timed phases | updates/s |", "|---|---|---|"]
    lines += [f"| {key} | {data['phases'][key.split()[0]]} | {rate:,.1f} |" for key, rate in data["rates"].items()]
    rates = data["rates"]
    if "cuda 32-true" in rates:
        lines += ["", f"GPU / CPU (float32): **{rates['cuda 32-true'] / rates['cpu 32-true']:.1f}x**; "
                      f"CPU with {data['threads']} torch threads."]  # fmt: skip
else:
    lines.append(f"FAILED: {last_line(throughput_log)}")
if mode == "cpu":
    lines += ["", "A CPU dry run: it tests the script, it measures nothing about GPUs."]
section = "\n".join(lines)
path = Path(target)
path.parent.mkdir(parents=True, exist_ok=True)
text = path.read_text() if path.is_file() else ""
if START in text and END in text:
    text = re.sub(re.escape(START) + r".*?" + re.escape(END), lambda _: f"{START}\n{section}\n{END}", text, flags=re.S)
elif mode == "gpu" and path.name == "BENCHMARKS.md":
    sys.exit(f"{target} has no {START} ... {END} section")
else:
    text = f"{START}\n{section}\n{END}\n"
path.write_text(text)
print(section)
sys.exit(1 if failed else 0)
EOF
