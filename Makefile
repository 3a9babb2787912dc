# The two commands of the README: `make serve` and `make test`. Both install what they need on first run.
VENV ?= .venv
PY := $(VENV)/bin/python
# A second openai release, one that sends creates as JSON (2.2-2.26; the pinned 3.x sends multipart), in a folder of
# its own: tests/serve_app/http/test_openai_videos.py runs it in a subprocess with PYTHONPATH on that folder. Its
# other dependencies (httpx, pydantic...) are the venv's; distro is the one 3.x no longer needs.
OPENAI_JSON_SDK := openai==2.26.0 distro==1.9.0
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml client/pyproject.toml Makefile | sha1sum | cut -c1-12)

# Local-profile secrets: fine for a laptop, never for a deployment (see README, Configuration).
API_KEYS ?= dev-key
WEBHOOK_SECRET ?= whsec_ZGV2LW9ubHktd2ViaG9vay1zZWNyZXQtY2hhbmdlLW1l
export API_KEYS WEBHOOK_SECRET

.PHONY: install system-deps serve test test-app test-cluster lint bench

$(STAMP): pyproject.toml client/pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e ".[dev]" -e ./client
	$(PY) -m pip install -q --no-deps --upgrade --target $(VENV)/openai-json-sdk $(OPENAI_JSON_SDK)
	rm -f $(VENV)/.installed-* && touch $@

install: $(STAMP)

# Prometheus (the metrics tests run a real one) and Chromium (the playground's browser test, driven by Playwright
# through executable_path: no browser download): Debian's packages, installed once.
system-deps:
	@command -v prometheus >/dev/null && command -v promtool >/dev/null && command -v chromium >/dev/null || \
		{ apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
			prometheus chromium >/dev/null; }

serve: install
	@echo "Once the app is up: playground http://127.0.0.1:8000/playground, API docs http://127.0.0.1:8000/docs"
	$(VENV)/bin/serve run serve_config.local.yaml

# Two pytest sessions: each owns one Ray cluster (the cluster tests start a fake multi-node one).
test: install system-deps
	$(VENV)/bin/pytest tests --ignore=tests/cluster
	$(VENV)/bin/pytest tests/cluster

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

bench: install
	$(PY) bench/gateway.py
