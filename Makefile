# The README's two commands: `make compare` (the main job) and `make test`. Both set up first.
PYTHON ?= python3
TASK ?= add_mod113

.PHONY: setup compare test lint
setup: .setup-done
.setup-done: pyproject.toml scripts/setup.sh
	PYTHON=$(PYTHON) bash scripts/setup.sh
	touch .setup-done

compare: .setup-done
	$(PYTHON) -m bench compare --task $(TASK)

test: .setup-done
	$(PYTHON) -m pytest

lint: .setup-done
	$(PYTHON) -m ruff check . && $(PYTHON) -m ruff format --check . && lint-imports
