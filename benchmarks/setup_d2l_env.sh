#!/usr/bin/env bash
# Creates benchmarks/.d2l-env: the book's own code (d2l 0.17.6) on the same torch as rnnlab.
# d2l is installed without its pinned dependencies (they pin an old torch); we add only
# what d2l/torch.py imports and needs at run time, except torchvision, IPython and
# matplotlib_inline, which bench_cpu.py stubs (see d2l_stubs.py).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
env="$here/.d2l-env"
python3 -m venv "$env"
"$env/bin/pip" install --quiet --upgrade pip
"$env/bin/pip" install --quiet torch==2.13.0
"$env/bin/pip" install --quiet --no-deps d2l==0.17.6
"$env/bin/pip" install --quiet matplotlib numpy pandas requests
"$env/bin/python" -c "import torch, d2l; print('d2l env ready: torch', torch.__version__)"
