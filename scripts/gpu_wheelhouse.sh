#!/usr/bin/env bash
# Downloads into .wheelhouse/ (git-ignored), on a machine with PyPI and this project's .venv, the wheels the GPU kit
# needs on the GPU machine beyond what its Python already holds: the runtime closure of lambda-trl[deepspeed], walked
# through the .venv's installed metadata, minus the packages of the GPU machine's image (their own
# dependencies are the image's business, so the walk stops there). The lambda-trl package itself does not travel as a
# wheel: the checkout does, on PYTHONPATH. On the GPU machine (no network), as `make gpu-check` does:
#     python3 -m pip install --no-index --no-deps --no-compile --target /tmp/lambda-trl/site-packages .wheelhouse/*.whl
#     PYTHONPATH=/tmp/lambda-trl/site-packages:$PWD python3 scripts/gpu_check.py
# `--no-deps` because pip would otherwise check the image's packages against these wheels' metadata, and no index is
# there to resolve a mismatch; the versions below are chosen to work with the image's instead.
#
# usage: scripts/gpu_wheelhouse.sh [PYTHON_VERSION (3.12)]        PYTHON=... picks the interpreter (default .venv)
set -euo pipefail
cd "$(dirname "$0")/.."
python_version="${1:-3.12}"
python="${PYTHON:-.venv/bin/python}"
out=.wheelhouse
rm -rf "$out"
mkdir -p "$out"

# The GPU machine's Python packages (the `nvidia-h200` image 'cuda', as its package list read on 2026-11-17; Python
# 3.12, torch 2.11.0+cu130, transformers 5.17.0, accelerate 1.15.0, huggingface-hub 1.33.0, numpy 2.5.2). Refresh
# with `python3 -m pip list --format=freeze` there.
image_packages="absl-py accelerate aiofiles aiohappyeyeballs aiohttp aiosignal annotated-doc anyio attrs botorch build
certifi charset-normalizer chex click cloudpickle cmake colorama contourpy coverage cuda-bindings cuda-core
cuda-pathfinder cuda-toolkit cupy-cuda13x cycler cython diffrax e3nn einops equinox etils execnet filelock flatbuffers
flax fonttools formulaic frozenlist fsspec gpytorch grpcio h11 h5py hf-xet httpcore httpx huggingface-hub humanize
hypothesis idna imageio iniconfig interface-meta jax jax-cuda13-pjrt jax-cuda13-plugin jaxlib jaxtyping jinja2 joblib
kiwisolver lazy-loader lightning lightning-utilities linear-operator lineax llvmlite lxml markdown markdown-it-py
markupsafe matplotlib mdurl meson ml-dtypes mpi4py mpmath msgpack multidict multipledispatch mypy-extensions nanobind
narwhals networkx ninja numba numba-cuda numpy numpyro nvidia-cublas nvidia-cuda-cupti nvidia-cuda-nvrtc
nvidia-cuda-runtime nvidia-cudnn-cu13 nvidia-cufft nvidia-cufile nvidia-curand nvidia-cusolver nvidia-cusparse
nvidia-cusparselt-cu13 nvidia-ml-py nvidia-nccl-cu13 nvidia-nvjitlink nvidia-nvshmem-cu13 nvidia-nvtx onnx onnx-ir
onnxruntime onnxscript opencv-python-headless optax opt-einsum opt-einsum-fx optimistix orbax-checkpoint packaging
pandas pathspec patsy peft pillow pip pluggy portalocker prometheus-client propcache protobuf psutil pyarrow pybind11
py-cpuinfo pygments pyparsing pyproject-hooks pyre-extensions pytest pytest-benchmark pytest-cov pytest-mock
pytest-timeout pytest-xdist python-dateutil pytorch-lightning pyyaml regex requests rich sacrebleu safetensors
scikit-build-core scikit-image scikit-learn scipy seaborn sentencepiece sentence-transformers setuptools shellingham
simplejson six sortedcontainers statsmodels sympy tabulate tensorboard tensorboard-data-server tensorstore
threadpoolctl tifffile tiktoken timm tokenizers toolz torch torchaudio torchdiffeq torch-geometric torchmetrics
torchvision tqdm transformers treescope triton typer typing-extensions typing-inspect urllib3 uvloop wadler-lindig
werkzeug wheel wrapt xarray xxhash yarl zipp"

# Brought although the image has them: lambda_trl.cli calls Trainer.end(), which transformers added in 5.18.0, and
# the image has 5.17.0; peft with it, so that the pair is the one the test suite runs (the image's peft is unknown).
# The .venv's transformers needs only what the image has (huggingface-hub>=1.31, tokenizers 0.23, safetensors 0.8).
bring="transformers peft"
# Versions other than the .venv's, for the image: pydantic 2.14 needs typing-extensions>=4.16, newer than the image
# may hold; 2.12 needs >=4.14.1 and satisfies deepspeed (>=2.0) and wandb (>=2.6).
pins="pydantic==2.12.5 pydantic-core==2.41.5"

IMAGE_PACKAGES="$image_packages" BRING="$bring" PINS="$pins" PYTHON_VERSION="$python_version" "$python" - > "$out/requirements.txt" <<'EOF'
import os
import re
from importlib.metadata import distribution

from packaging.requirements import Requirement


def key(name):
    return re.sub(r"[-_.]+", "-", name).lower()


image = {key(name) for name in os.environ["IMAGE_PACKAGES"].split()} - set(os.environ["BRING"].split())
pins = dict(pin.split("==") for pin in os.environ["PINS"].split())
# lambda-trl's own requirements, with its `deepspeed` extra; `make install` keeps them in step with pyproject.toml.
todo = [(Requirement(text), "deepspeed") for text in distribution("lambda-trl").requires]
python = {"python_version": os.environ["PYTHON_VERSION"], "sys_platform": "linux", "platform_machine": "x86_64"}
missing = {}
while todo:
    requirement, parent_extra = todo.pop()
    name = key(requirement.name)
    if requirement.marker and not requirement.marker.evaluate({**python, "extra": parent_extra}):
        continue
    if name in image or name in missing:
        continue
    dist = distribution(requirement.name)
    missing[name] = pins.get(name, dist.version)
    todo += [(Requirement(text), extra) for text in dist.requires or [] for extra in {"", *requirement.extras}]
for name, version in sorted(missing.items()):
    print(f"{name}=={version}")
EOF

platforms=()
for tag in manylinux_2_28_x86_64 manylinux_2_27_x86_64 manylinux_2_17_x86_64 manylinux2014_x86_64 manylinux1_x86_64 any; do
    platforms+=(--platform "$tag")
done
while read -r requirement; do
    if ! "$python" -m pip download --quiet --no-deps --only-binary=:all: --python-version "$python_version" \
            --implementation cp "${platforms[@]}" -d "$out" "$requirement" 2>/dev/null; then
        # No wheel on PyPI (DeepSpeed ships only its source): build one here. DeepSpeed's is pure Python
        # (py3-none-any): it compiles its CUDA ops just in time, and the kit's engines use none.
        "$python" -m pip wheel --quiet --no-deps --no-build-isolation -w "$out" "$requirement"
    fi
done < "$out/requirements.txt"

ls "$out"/*.whl | wc -l | xargs echo "wheels:"
du -cb "$out"/*.whl | tail -1 | awk '{printf "total: %.1f MiB\n", $1 / 2^20}'
