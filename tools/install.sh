#!/usr/bin/env bash
# Installs mmrskd and its OpenMMLab stack into the interpreter $PY
# (default: .venv/bin/python, created if missing). Safe to run again: it
# returns at once when nothing it depends on has changed.
#
# * An importable torch is kept (a CUDA build stays) and pinned for every
#   later pip call, so no dependency can pull a second torch or torchvision.
# * mmcv 2.1.0 is compiled from its sdist with ops against that torch
#   (about 9 minutes on 2 cores; pip caches the wheel for the next time).
set -euo pipefail
cd "$(dirname "$0")/.."

PY=${PY:-.venv/bin/python}
if [[ ! -x $PY ]]; then
    if [[ $PY != .venv/bin/python ]]; then
        echo "install: PY=$PY is not an executable interpreter" >&2; exit 2
    fi
    echo "install: creating .venv"
    python3 -m venv .venv
fi

prefix=$("$PY" -c 'import sys; print(sys.prefix)')
stamp="$prefix/.mmrskd-install-stamp"
fingerprint="$(pwd) $(cat setup.py requirements/*.txt | sha256sum | cut -c1-16)"
if [[ -f $stamp && $(cat "$stamp") == "$fingerprint" ]]; then
    echo "install: up to date ($PY)"; exit 0
fi

pip() { "$PY" -m pip --disable-pip-version-check "$@"; }

# pkg_resources (mmcv's setup.py, mmengine's pkg:: configs) left setuptools 81.
pip install -q "setuptools>=77.0.3,<81" wheel

if torch_version=$("$PY" -c 'import torch; print(torch.__version__)' 2>/dev/null); then
    echo "install: keeping torch $torch_version"
else
    torch_pin=$(grep '^torch==' requirements/constraints.txt)
    echo "install: installing $torch_pin"
    pip install -q -c requirements/constraints.txt "$torch_pin" numpy
    torch_version=$("$PY" -c 'import torch; print(torch.__version__)')
fi

mkdir -p .build
constraints=.build/constraints.txt
grep -v '^torch==' requirements/constraints.txt > "$constraints"
echo "torch==${torch_version}" >> "$constraints"

if "$PY" -c 'import mmcv, mmcv.ops, sys; sys.exit(mmcv.__version__ != "2.1.0")' 2>/dev/null; then
    echo "install: mmcv 2.1.0 with ops present"
else
    echo "install: building mmcv 2.1.0 with ops (about 9 min on 2 cores, cached afterwards)"
    MMCV_WITH_OPS=1 MAX_JOBS=$(nproc) pip install -q --no-build-isolation \
        -c "$constraints" mmcv==2.1.0
fi

pip install -q --no-build-isolation -c "$constraints" -e ".[tests]"

"$PY" - "$torch_version" <<'PYCHECK'
import sys
import torch
assert torch.__version__ == sys.argv[1], 'torch changed during install'
import mmrskd, mmdet, mmrotate  # noqa: E401,F401
print(f'install: ok (torch {torch.__version__}, mmdet {mmdet.__version__}, '
      f'mmrotate {mmrotate.__version__}, mmrskd {mmrskd.__version__})')
PYCHECK
echo "$fingerprint" > "$stamp"
