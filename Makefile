# Two entry points: `make demo` and `make test`. Both create .venv and install pinned versions.
PY      ?= python3
VENV    := .venv
BIN     := $(VENV)/bin
STAMP   := $(VENV)/.installed
CORES   ?= 2

.PHONY: demo test install clean mutate

$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade "pip>=24,<27"
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[real,dev]'
	touch $(STAMP)

install: $(STAMP)

test: $(STAMP)
	$(BIN)/python -m pytest -q

# The workflow's time after the install (the README's figure) is printed last, with the machine's load at the start.
demo: $(STAMP)
	@start=$$(date +%s); load=$$(cut -d' ' -f1 /proc/loadavg 2>/dev/null || echo "?"); \
	PATH=$(CURDIR)/$(BIN):$$PATH $(BIN)/snakemake --cores $(CORES) --workflow-profile workflow/profiles/default && \
	PATH=$(CURDIR)/$(BIN):$$PATH $(BIN)/snakemake --report results/nano/report.html && \
	echo "workflow + report: $$(( $$(date +%s) - start )) s on $(CORES) cores (load $$load at the start)"
	@echo "claims:  results/nano/tables/claims.md (the paper's claims as checks: verdicts with 95% intervals over seeds)"
	@echo "report:  results/nano/report.html"
	@echo "tables:  results/nano/tables/main.md, results/nano/nano/composition/tables/ (ablation.md, step_diagnostics.csv, ...)"
	@echo "figures: results/nano/nano/composition/figures/"

# Mutation testing of the formula modules ([tool.mutmut] in pyproject.toml); not part of `make test`.
# Starts over each time: mutmut keeps a survivor's verdict until its function changes, even when a new test kills it.
# One torch thread per child: with more, spinning threads of parallel children ran into mutmut's CPU-time limit.
mutate: $(STAMP)
	rm -rf mutants
	OMP_NUM_THREADS=1 $(BIN)/mutmut run --max-children $(CORES)
	$(BIN)/python tests/mutation/score.py

clean:
	rm -rf $(VENV)
