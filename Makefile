# Every target installs what it needs first: a fresh machine only needs Python 3.11+ and make.
UV := $(shell command -v uv 2>/dev/null || echo "python3 -m uv")

.PHONY: install run test lint format bench bench-bulk browser

install:
	@command -v uv >/dev/null 2>&1 || python3 -m uv --version >/dev/null 2>&1 \
		|| python3 -m pip install --quiet --disable-pip-version-check uv
	$(UV) sync --frozen --quiet --compile-bytecode
	@# Byte-compile our own sources too: with PYTHONDONTWRITEBYTECODE set, every process
	@# (CLI runs, test servers) would otherwise recompile every module at start.
	$(UV) run --frozen python -m compileall -q src

run: install
	$(UV) run chat-ingest serve

lint: install
	$(UV) run ruff check src tests
	$(UV) run ruff format --check src tests
	$(UV) run mypy
	$(UV) run lint-imports

test: lint browser
	$(UV) run pytest -n auto --dist loadgroup

# The console's browser tests drive Debian's Chromium (never a downloaded browser), with
# fonts for Chinese and emoji. Installed here when missing and we may (root); otherwise
# those tests skip, or fail under CI.
BROWSER_PACKAGES := chromium fonts-noto-cjk fonts-noto-color-emoji
browser:
	@dpkg -s $(BROWSER_PACKAGES) >/dev/null 2>&1 || [ "$$(id -u)" != 0 ] \
		|| { apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
			apt-get install -y -qq $(BROWSER_PACKAGES) >/dev/null; }

format: install
	$(UV) run ruff check --fix src tests
	$(UV) run ruff format src tests

bench: install
	@command -v wrk >/dev/null 2>&1 || (apt-get update -qq && apt-get install -y -qq wrk)
	$(UV) run python benchmarks/bench.py

bench-bulk: install
	$(UV) run python benchmarks/bulk.py
