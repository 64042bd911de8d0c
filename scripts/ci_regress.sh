#!/usr/bin/env bash
# The project's own code-regression check: SmolLM2-135M-Instruct on a fixed small subset of
# opinionqa_wd (68 documents: 4 of the 17 groups of each of the first 17 questions) and vk_direct
# (its first 60 documents), on CPU, compared with the committed baseline by `opinbench regress`.
# The subset is spread over questions on purpose: `regress` resamples whole questions, and
# 4 questions x 17 groups could never reach p < 0.05 (at best 2/2^4 = 0.125).
#
#   scripts/ci_regress.sh                 # run and compare; exit 0 ok, 1 regression, 2 not comparable
#   scripts/ci_regress.sh --record        # run and re-record baselines/ci_smollm2.json.gz (on purpose: see docs/ci.md)
#
# Needs OPINBENCH_DATA_DIR (or ../shared/data) with the OpinionQA and Value Kaleidoscope data.
set -euo pipefail
cd "$(dirname "$0")/.."
BASELINE=${OPINBENCH_CI_BASELINE:-baselines/ci_smollm2.json.gz}
RUN=${OPINBENCH_CI_RUN:-$(mktemp -d "${TMPDIR:-/tmp}/opinbench-ci-regress.XXXXXX")}
if [ -z "${OPINBENCH_DATA_DIR:-}" ] && [ -d ../shared/data ]; then
  export OPINBENCH_DATA_DIR="$(cd ../shared/data && pwd)"
fi
if [ -z "${OPINBENCH_DATA_DIR:-}" ]; then
  # Like the data tests: skipped with the reason when the data is absent.
  echo "ci_regress: SKIPPED: no OPINBENCH_DATA_DIR and no ../shared/data (OpinionQA and Value Kaleidoscope needed)" >&2
  exit 0
fi
# opinionqa_wd documents come 17 per question (one per group), in a fixed order.
SAMPLES=$(python3 -c 'import json; print(json.dumps({"opinionqa_wd": [17 * q + g for q in range(17) for g in (0, 5, 10, 15)], "vk_direct": list(range(60))}))')
# CPU, float32, fixed batch size: the same numbers on every run (checked: two runs identical).
opinbench eval --model hf --model_args pretrained=smollm2,dtype=float32 --device cpu \
  --batch_size 16 --apply_chat_template --tasks opinionqa_wd,vk_direct --samples "$SAMPLES" \
  --output_path "$RUN" --seed 0
if [ "${1:-}" = "--record" ]; then
  opinbench regress record "$RUN" --out "$BASELINE"
else
  opinbench regress "$BASELINE" "$RUN" --format markdown ${OPINBENCH_CI_REPORT:+--out "$OPINBENCH_CI_REPORT"}
fi
